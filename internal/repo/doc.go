// Package repo is the repository model every format shares: local, remote
// and virtual repositories, their tier policies, and the operations on
// assets that enforce those policies once for all formats.
//
// Invariants:
//   - Tier policies are computed here and nowhere else: dev allows overwrite
//     and delete; staging refuses to overwrite; release refuses overwrite
//     and delete (deprecate instead). Explicit per-repository settings win.
//   - Writes stream into the blob store, are verified (size, declared
//     checksums), made durable, and only then committed to metadata. A
//     failure at any step stores nothing that an asset points at.
//   - Re-uploading identical content where overwrite is refused succeeds
//     without change: a CI re-run must not fail.
//   - Remote repositories: content is kept by digest; mutable paths are
//     revalidated after the metadata TTL; N concurrent misses of one path make
//     one upstream request; an upstream failure serves what the cache holds and
//     never erases it; content whose checksum fails is never cached; a 404 is
//     remembered for the negative TTL.
//   - Virtual repositories resolve through their members in order, but a
//     path present in a local member is never taken from a remote member.
package repo
