// Package pypi serves Python package repositories: the legacy upload API
// twine speaks (a multipart POST at the repository root), the simple index
// (PEP 503 HTML and PEP 691 JSON by content negotiation, with PEP 592
// yanks, PEP 658/714 core metadata files and PEP 700 fields), and the JSON
// API (/pypi/<project>/json), for local, remote and virtual repositories.
//
// Layout below /repository/<key>/:
//
//	POST /                                  upload (:action=file_upload)
//	GET  simple/                            every project
//	GET  simple/<project>/                  the files of a project
//	GET  packages/<project>/<version>/<file>            a distribution
//	GET  packages/<project>/<version>/<file>.metadata   its core metadata
//	GET  pypi/<project>/json, pypi/<project>/<version>/json
//	POST|DELETE pypi/<project>/<version>/yank  yank (reason) / un-yank a release
//	DELETE pypi/<project>/<version>          remove a release (where the tier allows)
//	DELETE packages/<project>/<version>/<file>  remove one file
//
// Invariants:
//   - Project names are stored PEP 503-normalized (component names); a
//     release is a component whose version is the PEP 440-normalized version.
//   - A file name, once stored in a repository, never gets other bytes
//     (PyPI's rule), whatever the tier; identical re-uploads succeed.
//   - An upload is accepted only if its archive is a well-formed wheel or
//     sdist whose core metadata agrees with its file name and form fields;
//     archives are read in place with bounded sizes, never extracted.
//   - Generated pages are cached per (repository, project) and keyed by the
//     manager's generation, so any write makes them stale.
package pypi
