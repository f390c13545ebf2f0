package pypi

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/cofferhq/coffer/internal/errs"
)

// coreMetadata is a parsed core metadata file (a wheel's METADATA, an
// sdist's PKG-INFO): RFC 822-style headers, some used more than once,
// then the description as the body (metadata 2.1+).
type coreMetadata struct {
	fields map[string][]string // lower-case field name → values in order
	Body   string
}

// maxMetadataSize bounds a core metadata file (long descriptions included).
const maxMetadataSize = 4 << 20

// parseCoreMetadata parses a core metadata file. It is strict about the
// shape (every header line is "Name: value" or a continuation) and the
// required fields, lenient about everything else.
func parseCoreMetadata(b []byte) (*coreMetadata, error) {
	if len(b) > maxMetadataSize {
		return nil, errs.New(errs.Invalid, "core metadata is larger than %d bytes", maxMetadataSize)
	}
	if !utf8.Valid(b) {
		return nil, errs.New(errs.Invalid, "core metadata is not valid UTF-8")
	}
	m := &coreMetadata{fields: map[string][]string{}}
	rest := b
	var last string // field the previous line belonged to
	lineNo := 0
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			m.Body = string(rest)
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, errs.New(errs.Invalid, "core metadata line %d: continuation line before any field", lineNo)
			}
			vs := m.fields[last]
			vs[len(vs)-1] += "\n" + strings.TrimLeft(string(line), " \t")
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		key := string(k)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, errs.New(errs.Invalid, "core metadata line %d is not a \"Field: value\" header: %q", lineNo, clip(string(line), 60))
		}
		last = strings.ToLower(key)
		if len(m.fields) > 1000 || len(m.fields[last]) > 10000 {
			return nil, errs.New(errs.Invalid, "core metadata has too many fields")
		}
		m.fields[last] = append(m.fields[last], strings.TrimSpace(string(v)))
	}
	mv := m.Get("metadata-version")
	if mv == "" {
		return nil, errs.New(errs.Invalid, "core metadata has no Metadata-Version")
	}
	if major, _, _ := strings.Cut(mv, "."); major != "1" && major != "2" {
		return nil, errs.New(errs.Invalid, "unsupported Metadata-Version %q", clip(mv, 20))
	}
	if m.Get("name") == "" {
		return nil, errs.New(errs.Invalid, "core metadata has no Name")
	}
	if m.Get("version") == "" {
		return nil, errs.New(errs.Invalid, "core metadata has no Version")
	}
	return m, nil
}

// Get returns the first value of a field ("" when absent).
func (m *coreMetadata) Get(field string) string {
	if vs := m.fields[field]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// All returns every value of a field.
func (m *coreMetadata) All(field string) []string { return m.fields[field] }

// Description is the long description: the body, or the legacy
// Description field.
func (m *coreMetadata) Description() string {
	if m.Body != "" {
		return m.Body
	}
	return m.Get("description")
}
