package maven

import (
	"bytes"
	"encoding/xml"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/errs"
)

// Metadata is maven-metadata.xml, at the artifact level (versions) or the
// SNAPSHOT version level (snapshot, snapshotVersions).
type Metadata struct {
	XMLName      xml.Name    `xml:"metadata"`
	ModelVersion string      `xml:"modelVersion,attr,omitempty"`
	GroupID      string      `xml:"groupId,omitempty"`
	ArtifactID   string      `xml:"artifactId,omitempty"`
	Version      string      `xml:"version,omitempty"`
	Versioning   *Versioning `xml:"versioning,omitempty"`
	// Plugins is group-level metadata (plugin prefixes); accepted, unused.
	Plugins *struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"plugins,omitempty"`
}

// Versioning is the <versioning> element.
type Versioning struct {
	Latest           string            `xml:"latest,omitempty"`
	Release          string            `xml:"release,omitempty"`
	Snapshot         *Snapshot         `xml:"snapshot,omitempty"`
	Versions         []string          `xml:"versions>version,omitempty"`
	LastUpdated      string            `xml:"lastUpdated,omitempty"`
	SnapshotVersions []SnapshotVersion `xml:"snapshotVersions>snapshotVersion,omitempty"`
}

// Snapshot is the latest SNAPSHOT build of a version.
type Snapshot struct {
	Timestamp   string `xml:"timestamp,omitempty"`
	BuildNumber int    `xml:"buildNumber,omitempty"`
	LocalCopy   bool   `xml:"localCopy,omitempty"`
}

// SnapshotVersion is the latest file of one classifier and extension.
type SnapshotVersion struct {
	Classifier string `xml:"classifier,omitempty"`
	Extension  string `xml:"extension"`
	Value      string `xml:"value"`
	Updated    string `xml:"updated"`
}

// maxMetadata bounds a maven-metadata.xml we parse (client uploads and
// upstream copies); real ones with thousands of versions are ~100 KiB.
const maxMetadata = 4 << 20

// ParseMetadata parses maven-metadata.xml. It refuses anything that is not
// a well-formed <metadata> document within the size bound.
func ParseMetadata(r io.Reader) (*Metadata, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMetadata+1))
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "reading maven-metadata.xml failed: %v", err)
	}
	if len(b) > maxMetadata {
		return nil, errs.New(errs.TooLarge, "maven-metadata.xml is larger than %d bytes", maxMetadata)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var m Metadata
	if err := dec.Decode(&m); err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "maven-metadata.xml is not well-formed: %v", err)
	}
	// Nothing but whitespace, comments or processing instructions after the root.
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, err, "maven-metadata.xml is not well-formed: %v", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errs.New(errs.Invalid, "maven-metadata.xml has text after </metadata>")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return nil, errs.New(errs.Invalid, "maven-metadata.xml has content after </metadata>")
		}
	}
	if v := m.Versioning; v != nil {
		for _, s := range v.Versions {
			if strings.TrimSpace(s) == "" {
				return nil, errs.New(errs.Invalid, "maven-metadata.xml lists an empty version")
			}
		}
	}
	return &m, nil
}

// Encode renders m as a maven-metadata.xml document.
func (m *Metadata) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		// Only strings and ints: encoding cannot fail.
		panic(err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// timeFormat is lastUpdated's and updated's format (UTC).
const timeFormat = "20060102150405"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// artifactFile is what metadata generation needs of one stored file.
type artifactFile struct {
	c       *Coord
	updated time.Time
}

// artifactMetadata computes artifact-level metadata from the files stored
// under an artifact's folder; nil when there is no version.
func artifactMetadata(group, artifact string, files []artifactFile) *Metadata {
	seen := map[string]bool{}
	var versions []string
	var last time.Time
	for _, f := range files {
		if f.c.Kind != File {
			continue
		}
		if !seen[f.c.Version] {
			seen[f.c.Version] = true
			versions = append(versions, f.c.Version)
		}
		if f.updated.After(last) {
			last = f.updated
		}
	}
	if len(versions) == 0 {
		return nil
	}
	return versionsMetadata(group, artifact, versions, stamp(last))
}

// versionsMetadata builds artifact-level metadata over versions (any order,
// no duplicates): sorted in Maven order, latest the highest, release the
// highest that is not a SNAPSHOT.
func versionsMetadata(group, artifact string, versions []string, lastUpdated string) *Metadata {
	SortVersions(versions)
	v := &Versioning{Versions: versions, LastUpdated: lastUpdated, Latest: versions[len(versions)-1]}
	for i := len(versions) - 1; i >= 0; i-- {
		if !IsSnapshot(versions[i]) {
			v.Release = versions[i]
			break
		}
	}
	return &Metadata{GroupID: group, ArtifactID: artifact, Versioning: v}
}

// snapshotMetadata computes a SNAPSHOT version's metadata from the files in
// its folder; nil when there is none.
func snapshotMetadata(group, artifact, version string, files []artifactFile) *Metadata {
	type key struct{ classifier, ext string }
	latest := map[key]artifactFile{}
	var order []key
	var best artifactFile
	var last time.Time
	for _, f := range files {
		if f.c.Kind != File || f.c.Version != version {
			continue
		}
		k := key{f.c.Classifier, f.c.Extension}
		cur, ok := latest[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || newerBuild(f, cur) {
			latest[k] = f
		}
		if best.c == nil || newerBuild(f, best) {
			best = f
		}
		if f.updated.After(last) {
			last = f.updated
		}
	}
	if best.c == nil {
		return nil
	}
	v := &Versioning{LastUpdated: stamp(last)}
	if best.c.BuildNumber > 0 {
		v.Snapshot = &Snapshot{Timestamp: best.c.Timestamp, BuildNumber: best.c.BuildNumber}
	} else {
		v.Snapshot = &Snapshot{LocalCopy: false}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].ext != order[j].ext {
			return order[i].ext < order[j].ext
		}
		return order[i].classifier < order[j].classifier
	})
	for _, k := range order {
		f := latest[k]
		v.SnapshotVersions = append(v.SnapshotVersions, SnapshotVersion{
			Classifier: k.classifier, Extension: k.ext, Value: f.c.FileVersion, Updated: stamp(f.updated)})
	}
	return &Metadata{ModelVersion: "1.1.0", GroupID: group, ArtifactID: artifact, Version: version, Versioning: v}
}

// newerBuild orders files of one SNAPSHOT: timestamped builds by build
// number, then time; a non-timestamped file counts as older than any build.
func newerBuild(a, b artifactFile) bool {
	if a.c.BuildNumber != b.c.BuildNumber {
		return a.c.BuildNumber > b.c.BuildNumber
	}
	return a.updated.After(b.updated)
}

// mergeMetadata merges artifact-level metadata of several repositories:
// the union of versions, latest and release recomputed, the newest
// lastUpdated. Version-level (SNAPSHOT) metadata is not merged: the newest
// build wins whole (see mergeSnapshot).
func mergeMetadata(group, artifact string, ms []*Metadata) *Metadata {
	seen := map[string]bool{}
	var versions []string
	last := ""
	for _, m := range ms {
		if m == nil || m.Versioning == nil {
			continue
		}
		for _, v := range m.Versioning.Versions {
			v = strings.TrimSpace(v)
			if v != "" && !seen[v] {
				seen[v] = true
				versions = append(versions, v)
			}
		}
		if m.Versioning.LastUpdated > last {
			last = m.Versioning.LastUpdated
		}
	}
	if len(versions) == 0 {
		return nil
	}
	return versionsMetadata(group, artifact, versions, last)
}

// mergeSnapshot picks, among SNAPSHOT version metadata of several
// repositories, the one with the newest build.
func mergeSnapshot(ms []*Metadata) *Metadata {
	var best *Metadata
	key := func(m *Metadata) string {
		if m.Versioning == nil {
			return ""
		}
		k := m.Versioning.LastUpdated
		if s := m.Versioning.Snapshot; s != nil && s.Timestamp != "" {
			k = s.Timestamp
		}
		return k
	}
	for _, m := range ms {
		if m == nil {
			continue
		}
		if best == nil || key(m) > key(best) {
			best = m
		}
	}
	return best
}
