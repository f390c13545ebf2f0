// Package lifecycle moves artifacts through their life: promotion from one
// local repository to another (by reference, with gates and an audit
// record) and retention (rules evaluated on a schedule or on demand,
// with a dry run). It works on the metadata store through repo.Manager and
// asks formats, through the optional format.Coordinator and format.Grapher
// capabilities, what an artifact's coordinates mean and what its graph is.
//
// Invariants: a promotion copies metadata rows only, never bytes, in one
// transaction; retention never expires anything in a release repository, a
// pinned version, a version downloaded within the rules' window, or what a
// kept tag points at; a repository without rules keeps everything.
package lifecycle
