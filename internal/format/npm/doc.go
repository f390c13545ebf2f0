// Package npm serves npm registries under /repository/<key>/ for local
// (hosted), remote (proxy) and virtual repositories: packuments (full and
// abbreviated), tarballs, publish, dist-tags, deprecation, unpublish,
// search, the CouchDB login flow and whoami.
//
// Storage uses the core's generic model only: a published version is a
// component (name, version) whose attributes are its version manifest, with
// one asset, the tarball, at <name>/-/<basename>-<version>.tgz; dist-tags
// are tags; deprecation is the component's deprecation. A remote repository
// caches the upstream packument as an asset at <name>/-/package.json
// (revalidated after metadata_ttl) and each tarball it fetched together with
// its version's manifest as a component, so that a version later unpublished
// upstream stays installable for whoever pins it.
//
// Packuments are generated from the database, never stored, and cached in
// memory keyed by the generations (repo.Manager.Generation) of every source
// they were built from; any write through the manager makes them stale.
//
// Invariants: nothing is stored unless the whole publish document parsed
// and the tarball matched the integrity and shasum the client declared; a
// version, once published, is never replaced (on any tier); a package name
// that a local member of a virtual repository holds is never resolved from
// its remote members.
package npm
