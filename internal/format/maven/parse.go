package maven

import (
	"strings"

	"github.com/cofferhq/coffer/internal/checksum"
	"github.com/cofferhq/coffer/internal/errs"
)

// Kind is what a Maven 2 layout path addresses.
type Kind int

// The kinds of path.
const (
	// File is an artifact file in a version folder (a jar, a pom, ...).
	File Kind = iota + 1
	// ArtifactMetadata is g/a/maven-metadata.xml.
	ArtifactMetadata
	// VersionMetadata is g/a/V-SNAPSHOT/maven-metadata.xml.
	VersionMetadata
)

// MetadataFile is the name of the metadata file at both levels.
const MetadataFile = "maven-metadata.xml"

// Coord is a parsed Maven 2 layout path.
type Coord struct {
	Kind     Kind
	Group    string // com.acme
	Artifact string // lib
	// Version is the version folder (the base version: 1.0-SNAPSHOT); ""
	// for artifact metadata.
	Version string
	// FileVersion is the version in a file's name: the base version, or a
	// SNAPSHOT's timestamped version (1.0-20261127.141324-1).
	FileVersion string
	Classifier  string
	Extension   string // jar, pom, tar.gz, jar.asc
	// Timestamp and BuildNumber are set for a timestamped SNAPSHOT file.
	Timestamp   string
	BuildNumber int
	// Checksum is set when the path is a checksum sidecar (.sha1 ...): the
	// other fields describe the file it sums, and Path is that file's path.
	Checksum checksum.Alg
	// Path is the addressed file's path (without the checksum suffix).
	Path string
}

// Name is the component name: groupId:artifactId.
func (c *Coord) Name() string { return c.Group + ":" + c.Artifact }

// GAV is groupId:artifactId:version.
func (c *Coord) GAV() string { return c.Group + ":" + c.Artifact + ":" + c.Version }

// Snapshot reports whether the coordinate's version is a SNAPSHOT.
func (c *Coord) Snapshot() bool { return IsSnapshot(c.Version) }

// IsSnapshot reports whether a (base) version is a SNAPSHOT.
func IsSnapshot(v string) bool { return strings.HasSuffix(v, "-SNAPSHOT") }

// ArtifactDir is the artifact's folder: com/acme/lib.
func (c *Coord) ArtifactDir() string {
	return strings.ReplaceAll(c.Group, ".", "/") + "/" + c.Artifact
}

// checksumExts are the sidecar suffixes, longest first.
var checksumExts = []struct {
	ext string
	alg checksum.Alg
}{{".sha512", checksum.SHA512}, {".sha256", checksum.SHA256}, {".sha1", checksum.SHA1}, {".md5", checksum.MD5}}

const maxPathLen = 1024

// ParsePath parses a path below the repository root (decoded segments) in
// the Maven 2 layout. It refuses everything that is not one: too few
// segments, names with characters Maven does not use, a file whose name does
// not start with artifactId-version.
func ParsePath(segs []string) (*Coord, error) {
	if len(segs) < 3 {
		return nil, layoutErr(segs, "a Maven path is <group>/<artifactId>/<version>/<file> or <group>/<artifactId>/maven-metadata.xml")
	}
	total := 0
	for _, s := range segs {
		total += len(s) + 1
		if err := checkSegment(s); err != nil {
			return nil, layoutErr(segs, err.Error())
		}
	}
	if total > maxPathLen {
		return nil, layoutErr(segs, "path is longer than 1024 bytes")
	}
	last := segs[len(segs)-1]
	c := &Coord{}
	name := last
	for _, ce := range checksumExts {
		if strings.HasSuffix(last, ce.ext) && len(last) > len(ce.ext) {
			c.Checksum, name = ce.alg, strings.TrimSuffix(last, ce.ext)
			break
		}
	}
	dirs := segs[:len(segs)-1]
	var gerr error
	if name == MetadataFile {
		v := dirs[len(dirs)-1]
		if IsSnapshot(v) && len(dirs) >= 3 {
			c.Kind, c.Version, c.FileVersion = VersionMetadata, v, v
			c.Artifact = dirs[len(dirs)-2]
			c.Group, gerr = groupOf(dirs[:len(dirs)-2])
		} else {
			c.Kind = ArtifactMetadata
			c.Artifact = v
			c.Group, gerr = groupOf(dirs[:len(dirs)-1])
		}
		c.Path = strings.Join(append(append([]string{}, dirs...), name), "/")
		if gerr != nil {
			return nil, layoutErr(segs, gerr.Error())
		}
		if err := checkGroup(c.Group); err != nil {
			return nil, layoutErr(segs, err.Error())
		}
		return c, nil
	}
	if len(segs) < 4 {
		return nil, layoutErr(segs, "a Maven artifact path is <group>/<artifactId>/<version>/<artifactId>-<version>[-<classifier>].<extension>")
	}
	c.Kind = File
	c.Version = dirs[len(dirs)-1]
	c.Artifact = dirs[len(dirs)-2]
	c.Group, gerr = groupOf(dirs[:len(dirs)-2])
	if gerr != nil {
		return nil, layoutErr(segs, gerr.Error())
	}
	c.Path = strings.Join(append(append([]string{}, dirs...), name), "/")
	if err := checkGroup(c.Group); err != nil {
		return nil, layoutErr(segs, err.Error())
	}
	if strings.HasPrefix(c.Version, "maven-metadata") {
		return nil, layoutErr(segs, "a version cannot be named "+c.Version)
	}
	prefix := c.Artifact + "-"
	if !strings.HasPrefix(name, prefix) {
		return nil, layoutErr(segs, "the file name must start with "+prefix+c.Version)
	}
	rest := name[len(prefix):]
	switch {
	case rest == c.Version:
		return nil, layoutErr(segs, "the file name has no extension")
	case strings.HasPrefix(rest, c.Version) && len(rest) > len(c.Version) && (rest[len(c.Version)] == '.' || rest[len(c.Version)] == '-'):
		c.FileVersion = c.Version
		rest = rest[len(c.Version):]
	case c.Snapshot():
		base := strings.TrimSuffix(c.Version, "-SNAPSHOT")
		ts, bn, n, ok := parseTimestamped(rest, base)
		if !ok {
			return nil, layoutErr(segs, "the file name must start with "+prefix+c.Version+" or "+prefix+base+"-<yyyyMMdd.HHmmss>-<buildNumber>")
		}
		c.Timestamp, c.BuildNumber = ts, bn
		c.FileVersion = rest[:n]
		rest = rest[n:]
	default:
		return nil, layoutErr(segs, "the file name must start with "+prefix+c.Version)
	}
	// rest is "[-classifier].ext"
	if strings.HasPrefix(rest, "-") {
		dot := strings.IndexByte(rest, '.')
		if dot < 0 {
			return nil, layoutErr(segs, "the file name has no extension")
		}
		c.Classifier = rest[1:dot]
		if c.Classifier == "" {
			return nil, layoutErr(segs, "the file name has an empty classifier")
		}
		rest = rest[dot:]
	}
	if !strings.HasPrefix(rest, ".") || len(rest) < 2 || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
		return nil, layoutErr(segs, "the file name has no valid extension")
	}
	c.Extension = rest[1:]
	return c, nil
}

// parseTimestamped matches "<base>-yyyyMMdd.HHmmss-N" at the start of s and
// returns the timestamp, the build number and the length matched.
func parseTimestamped(s, base string) (ts string, bn, n int, ok bool) {
	if !strings.HasPrefix(s, base+"-") {
		return "", 0, 0, false
	}
	i := len(base) + 1
	if len(s) < i+15+2 {
		return "", 0, 0, false
	}
	t := s[i : i+15]
	for j := 0; j < 15; j++ {
		if j == 8 {
			if t[j] != '.' {
				return "", 0, 0, false
			}
			continue
		}
		if t[j] < '0' || t[j] > '9' {
			return "", 0, 0, false
		}
	}
	i += 15
	if s[i] != '-' {
		return "", 0, 0, false
	}
	i++
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 9 {
		bn = bn*10 + int(s[i]-'0')
		i++
	}
	if i == start || bn == 0 {
		return "", 0, 0, false
	}
	if i < len(s) && s[i] != '.' && s[i] != '-' {
		return "", 0, 0, false
	}
	return t, bn, i, true
}

// checkGroup refuses a groupId whose folders would not give it back: the
// layout turns each dot into a folder, so a folder name cannot hold one.
func checkGroup(g string) error {
	if g == "" {
		return errs.New(errs.Invalid, "the groupId is missing")
	}
	return nil
}

func groupOf(dirs []string) (string, error) {
	for _, d := range dirs {
		if strings.Contains(d, ".") {
			return "", errs.New(errs.Invalid, "groupId folder %q contains a dot (the layout turns each dot of a groupId into a folder)", d)
		}
	}
	return strings.Join(dirs, "."), nil
}

// checkSegment allows the characters Maven coordinates use.
func checkSegment(s string) error {
	if s == "" {
		return errs.New(errs.Invalid, "empty path segment")
	}
	if len(s) > 255 {
		return errs.New(errs.Invalid, "a path segment is longer than 255 bytes")
	}
	if strings.HasPrefix(s, ".") {
		return errs.New(errs.Invalid, "segment %q starts with a dot", s)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '.' || b == '-' || b == '_' || b == '+' || b == '~':
		default:
			return errs.New(errs.Invalid, "segment %q has a character Maven coordinates do not use (%q)", s, rune(b))
		}
	}
	return nil
}

func layoutErr(segs []string, why string) error {
	p := strings.Join(segs, "/")
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return errs.New(errs.Invalid, "%s is not a valid Maven 2 layout path: %s", p, why)
}
