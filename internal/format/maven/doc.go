// Package maven serves Maven 2 repositories under /repository/<key>/:
// artifact files in the Maven 2 layout (PUT/GET/HEAD/DELETE), checksum
// sidecars computed for every file (.sha1, .md5, .sha256, .sha512), and
// maven-metadata.xml at the artifact and SNAPSHOT version levels, computed
// from what is stored (client uploads of metadata are checked, not kept).
//
// Invariants: only Maven 2 layout paths are stored (unless the repository's
// layout_policy is permissive); an uploaded checksum never disagrees with
// its stored file; generated metadata is cached per node by the name's
// generation, so it never outlives a write. Remote repositories verify the
// upstream's .sha1 before caching a file; virtual repositories merge
// metadata across members and never take a groupId:artifactId held by a
// local member from a remote one.
package maven
