// Package metrics owns Coffer's Prometheus metrics: one registry, created
// by the app and handed to whoever records.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cofferhq/coffer/internal/meta"
)

// Metrics is the set of Coffer's metrics.
type Metrics struct {
	Registry *prometheus.Registry

	Requests      *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	BytesReceived *prometheus.CounterVec
	BytesSent     *prometheus.CounterVec
	Proxy         *prometheus.CounterVec

	GCRuns       prometheus.Counter
	GCBlobs      prometheus.Counter
	GCBytes      prometheus.Counter
	GCUploads    prometheus.Counter
	GCLastRun    prometheus.Gauge
	GCLastLength prometheus.Gauge
}

// New creates the metrics and registers them, with the Go and process
// collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_requests_total",
			Help: "HTTP requests by repository, format, method and status code.",
		}, []string{"repository", "format", "method", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "coffer_http_request_duration_seconds",
			Help:    "HTTP request latency by repository, format and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"repository", "format", "method"}),
		BytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_received_bytes_total",
			Help: "Request body bytes received, by repository and format.",
		}, []string{"repository", "format"}),
		BytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_http_sent_bytes_total",
			Help: "Response body bytes sent, by repository and format.",
		}, []string{"repository", "format"}),
		Proxy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coffer_proxy_lookups_total",
			Help: "Remote repository lookups by outcome (hit, revalidated, fetched, stale, negative, not_found, error).",
		}, []string{"repository", "outcome"}),
	}
	m.GCRuns = prometheus.NewCounter(prometheus.CounterOpts{Name: "coffer_gc_runs_total", Help: "Garbage collections run."})
	m.GCBlobs = prometheus.NewCounter(prometheus.CounterOpts{Name: "coffer_gc_reclaimed_blobs_total", Help: "Blobs deleted by garbage collection."})
	m.GCBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "coffer_gc_reclaimed_bytes_total", Help: "Bytes reclaimed by garbage collection."})
	m.GCUploads = prometheus.NewCounter(prometheus.CounterOpts{Name: "coffer_gc_expired_uploads_total", Help: "Abandoned upload sessions removed."})
	m.GCLastRun = prometheus.NewGauge(prometheus.GaugeOpts{Name: "coffer_gc_last_run_timestamp_seconds", Help: "When the last collection finished."})
	m.GCLastLength = prometheus.NewGauge(prometheus.GaugeOpts{Name: "coffer_gc_last_run_duration_seconds", Help: "How long the last collection took."})
	reg.MustRegister(m.GCRuns, m.GCBlobs, m.GCBytes, m.GCUploads, m.GCLastRun, m.GCLastLength)
	reg.MustRegister(m.Requests, m.Duration, m.BytesReceived, m.BytesSent, m.Proxy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveGC records a finished (not dry) collection.
func (m *Metrics) ObserveGC(dry bool, blobs int, bytes int64, uploads int, started, finished time.Time) {
	if dry {
		return
	}
	m.GCRuns.Inc()
	m.GCBlobs.Add(float64(blobs))
	m.GCBytes.Add(float64(bytes))
	m.GCUploads.Add(float64(uploads))
	m.GCLastRun.Set(float64(finished.Unix()))
	m.GCLastLength.Set(finished.Sub(started).Seconds())
}

// ObserveProxy counts a remote lookup outcome.
func (m *Metrics) ObserveProxy(repo, outcome string) {
	m.Proxy.WithLabelValues(repo, outcome).Inc()
}

// RegisterStorage adds gauges of storage usage computed from the metadata
// store at scrape time: logical bytes and assets per repository, physical
// bytes and blobs for the instance.
func (m *Metrics) RegisterStorage(store meta.Store, repos func() []RepoInfo, instanceQuota int64) {
	m.Registry.MustRegister(&storageCollector{store: store, repos: repos, quota: instanceQuota})
}

// RepoInfo is what the storage gauges need to know of a repository.
type RepoInfo struct {
	ID, Key string
	Quota   int64 // 0: none
}

type storageCollector struct {
	store meta.Store
	repos func() []RepoInfo
	quota int64
}

var (
	repoBytesDesc  = prometheus.NewDesc("coffer_repository_bytes", "Logical storage of a repository: the sum of its assets' sizes.", []string{"repository"}, nil)
	repoAssetsDesc = prometheus.NewDesc("coffer_repository_assets", "Assets stored in a repository.", []string{"repository"}, nil)
	blobBytesDesc  = prometheus.NewDesc("coffer_blob_bytes", "Physical storage: bytes of unique blobs.", nil, nil)
	blobCountDesc  = prometheus.NewDesc("coffer_blobs", "Unique blobs stored.", nil, nil)
	quotaDesc      = prometheus.NewDesc("coffer_quota_bytes", "Storage quota (repository \"\" is the instance's physical quota).", []string{"repository"}, nil)
	quotaUsedDesc  = prometheus.NewDesc("coffer_quota_used_ratio", "Share of the quota in use (alert at the warning threshold).", []string{"repository"}, nil)
)

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- repoBytesDesc
	ch <- repoAssetsDesc
	ch <- blobBytesDesc
	ch <- blobCountDesc
	ch <- quotaDesc
	ch <- quotaUsedDesc
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	usage, err := c.store.RepoUsage(ctx)
	if err != nil {
		return
	}
	for _, r := range c.repos() {
		u := usage[r.ID]
		ch <- prometheus.MustNewConstMetric(repoBytesDesc, prometheus.GaugeValue, float64(u.Bytes), r.Key)
		ch <- prometheus.MustNewConstMetric(repoAssetsDesc, prometheus.GaugeValue, float64(u.Count), r.Key)
		if r.Quota > 0 {
			ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, float64(r.Quota), r.Key)
			ch <- prometheus.MustNewConstMetric(quotaUsedDesc, prometheus.GaugeValue, float64(u.Bytes)/float64(r.Quota), r.Key)
		}
	}
	if p, err := c.store.BlobUsage(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(blobBytesDesc, prometheus.GaugeValue, float64(p.Bytes))
		ch <- prometheus.MustNewConstMetric(blobCountDesc, prometheus.GaugeValue, float64(p.Count))
		if c.quota > 0 {
			ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, float64(c.quota), "")
			ch <- prometheus.MustNewConstMetric(quotaUsedDesc, prometheus.GaugeValue, float64(p.Bytes)/float64(c.quota), "")
		}
	}
}

// ReplicationInfo is what the replication gauges need to know of a target.
type ReplicationInfo struct {
	Target               string
	InSync               bool
	LagSeconds           float64
	LastSuccess          time.Time
	BlobsSent, BytesSent int64
}

// RegisterReplication adds per-target replication gauges, read at scrape time.
func (m *Metrics) RegisterReplication(targets func() []ReplicationInfo) {
	m.Registry.MustRegister(replicationCollector(targets))
}

type replicationCollector func() []ReplicationInfo

var (
	replLagDesc    = prometheus.NewDesc("coffer_replication_lag_seconds", "Age of the oldest change not yet replicated to the target (0: in sync).", []string{"target"}, nil)
	replInSyncDesc = prometheus.NewDesc("coffer_replication_in_sync", "1 when every change is on the target.", []string{"target"}, nil)
	replLastDesc   = prometheus.NewDesc("coffer_replication_last_success_timestamp_seconds", "When the last complete replication pass ended.", []string{"target"}, nil)
	replBlobsDesc  = prometheus.NewDesc("coffer_replication_blobs_sent_total", "Blobs sent to the target.", []string{"target"}, nil)
	replBytesDesc  = prometheus.NewDesc("coffer_replication_bytes_sent_total", "Bytes of blobs sent to the target.", []string{"target"}, nil)
)

func (c replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{replLagDesc, replInSyncDesc, replLastDesc, replBlobsDesc, replBytesDesc} {
		ch <- d
	}
}

func (c replicationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c() {
		in := 0.0
		if t.InSync {
			in = 1
		}
		ch <- prometheus.MustNewConstMetric(replLagDesc, prometheus.GaugeValue, t.LagSeconds, t.Target)
		ch <- prometheus.MustNewConstMetric(replInSyncDesc, prometheus.GaugeValue, in, t.Target)
		if !t.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(replLastDesc, prometheus.GaugeValue, float64(t.LastSuccess.UnixNano())/1e9, t.Target)
		}
		ch <- prometheus.MustNewConstMetric(replBlobsDesc, prometheus.CounterValue, float64(t.BlobsSent), t.Target)
		ch <- prometheus.MustNewConstMetric(replBytesDesc, prometheus.CounterValue, float64(t.BytesSent), t.Target)
	}
}
