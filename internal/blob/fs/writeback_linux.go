package fs

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackWindow is how many chunks may be in flight to the disk before a
// writer waits for the oldest one.
const writebackWindow = 4

// startWriteback asks the kernel to begin writing [off, off+n) to disk now
// instead of when dirty pages pile up, so that the fsync at Commit finds
// most of a large blob already on disk: the disk works while the upload is
// still arriving. It then waits for the chunk writebackWindow chunks back,
// which bounds the unwritten part of a blob without stalling the stream,
// and drops that chunk from the page cache: a large upload then recycles a
// few megabytes of cache instead of filling memory with pages nobody reads
// soon (and on a VM, touching fresh memory is what writing costs most).
func startWriteback(f *os.File, off, n int64) {
	fd := int(f.Fd())
	unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	if back := off - writebackWindow*n; back >= 0 {
		unix.SyncFileRange(fd, back, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		unix.Fadvise(fd, back, n, unix.FADV_DONTNEED)
	}
}
