package repo

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

// downloadRecorder coalesces "last downloaded" updates: a download only
// marks the asset in memory, and a background flush writes the marks in one
// transaction every flushEvery. Retention needs the day, not the nanosecond,
// and a write per GET would put every download on the writer's queue.
type downloadRecorder struct {
	store   meta.Store
	log     *slog.Logger
	mu      sync.Mutex
	pending map[string]time.Time
	now     atomic.Value // func() time.Time; unset: time.Now
	stop    chan struct{}
	done    chan struct{}
}

const flushEvery = 30 * time.Second

func newDownloadRecorder(store meta.Store, log *slog.Logger) *downloadRecorder {
	d := &downloadRecorder{store: store, log: log, pending: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go d.loop()
	return d
}

func (d *downloadRecorder) record(assetID string) {
	d.mu.Lock()
	d.pending[assetID] = d.clock()
	d.mu.Unlock()
}

func (d *downloadRecorder) loop() {
	defer close(d.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.flush()
		case <-d.stop:
			d.flush()
			return
		}
	}
}

func (d *downloadRecorder) flush() {
	d.mu.Lock()
	batch := d.pending
	d.pending = map[string]time.Time{}
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.store.InTx(ctx, func(tx meta.Tx) error {
		for id, at := range batch {
			if err := tx.TouchDownloaded(ctx, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.log.Warn("recording downloads failed", "err", err, "count", len(batch))
	}
}

// clock is the time a download is stamped with (the manager's clock when
// a test set one).
func (d *downloadRecorder) clock() time.Time {
	if f, _ := d.now.Load().(func() time.Time); f != nil {
		return f()
	}
	return time.Now()
}

// Close flushes what is pending and stops the background loop.
func (d *downloadRecorder) Close() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}
