// Package blob owns Coffer's content-addressed byte store.
//
// A blob is immutable bytes addressed by the sha256 digest of its content,
// stored once for the whole instance whatever repositories and formats refer
// to it. Writers hash while they write; Commit makes the bytes durable before
// they become visible under their digest, so a reader never sees partial
// content and a crash leaves at most an unreferenced blob or a temporary file.
//
// Invariants every driver keeps (checked by blobtest.Run):
//   - Open/Stat of a committed digest returns exactly the committed bytes.
//   - Commit with an expected digest that differs stores nothing and returns
//     an error of kind errs.DigestMismatch.
//   - Cancel, or a Writer that is never committed, leaves nothing visible.
//   - Committing content that already exists is not an error (deduplication).
//
// The store knows nothing of repositories, formats or references: which blobs
// are still in use is the metadata store's business (internal/meta), and
// deleting unused blobs is garbage collection's.
package blob
