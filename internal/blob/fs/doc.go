// Package fs is the filesystem blob store driver.
//
// On-disk layout under the root directory:
//
//	<root>/
//	  sha256/
//	    ab/
//	      abcdef0123...   one file per blob, named by the hex of its sha256,
//	                      in a directory named by the first two hex digits
//	  _uploads/
//	    <random id>       bytes being written; never read as a blob
//
// Commit order: write → fsync(file) → rename(_uploads/id → sha256/ab/hex) →
// fsync(sha256/ab) (and fsync(sha256) when ab was created). The rename is the
// moment the blob becomes visible, and it only happens to a file that is
// already durable, so a crash at any point leaves either nothing visible or
// the complete blob; temporary files left by a crash are reclaimed by
// RemoveStaleUploads.
package fs
