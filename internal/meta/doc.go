// Package meta owns Coffer's metadata: repositories, assets and the blobs
// they reference, users, groups, tokens, permissions and the audit log.
//
// The store is split into small role interfaces (Repos, Assets, Blobs,
// Users, Tokens, Permissions, Audit) composed into Store; InTx runs a
// function in one transaction over the same roles. Every back-end passes the
// shared suite metatest.Run; the SQL lives once in meta/sqldb and is portable
// between SQLite and PostgreSQL (positional $N parameters, no dialect-only
// syntax), with migrations embedded from meta/migrations.
//
// Invariants:
//   - An asset references a blob row; the blob row is written (in the same
//     transaction) only after the blob store made the bytes durable.
//   - Deleting an asset drops its reference only; blob rows and bytes are
//     reclaimed by garbage collection, never inline.
//   - Engine errors are translated at the boundary: a unique violation is
//     errs.Exists, a missing row is errs.NotFound.
//   - Times are stored as Unix nanoseconds (0 means unset).
package meta
