package pypi

import (
	"regexp"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
)

// validName is PEP 508's project name: ASCII letters and digits, with
// ".", "_" and "-" inside.
var validName = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)

// maxNameLen bounds project names (PyPI has no formal limit; names in the
// wild stay far below this).
const maxNameLen = 200

// normalize is PEP 503's name normalisation: runs of "-", "_" and "." become
// one "-", lower case.
func normalize(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}

// checkName refuses what is not a valid project name.
func checkName(name string) error {
	if len(name) > maxNameLen || !validName.MatchString(name) {
		return errs.New(errs.Invalid, "%q is not a valid project name: names are ASCII letters, digits, '.', '_' and '-', starting and ending with a letter or digit", clip(name, 80))
	}
	return nil
}

// Distribution kinds (the legacy API's filetype).
const (
	kindWheel = "bdist_wheel"
	kindSdist = "sdist"
)

// dist is what a distribution's file name says.
type dist struct {
	Filename string
	Kind     string // kindWheel or kindSdist
	Name     string // as written in the file name
	Version  string // as written in the file name
	// PyVersion is the legacy API's pyversion: the wheel's python tag, "source" for sdists.
	PyVersion string
	Ext       string // ".whl", ".tar.gz", ".zip"
}

// parseFilename reads a wheel or sdist file name. project, when not empty,
// is the (normalized) project the file must belong to: sdist names are
// split where the project name ends, since both parts may hold "-".
func parseFilename(filename, project string) (*dist, error) {
	if filename == "" || len(filename) > 255 || strings.ContainsAny(filename, "/\\\x00") || strings.HasPrefix(filename, ".") {
		return nil, errs.New(errs.Invalid, "invalid file name %q", clip(filename, 80))
	}
	for _, c := range filename {
		if c < 0x21 || c > 0x7e {
			return nil, errs.New(errs.Invalid, "invalid file name %q: only printable ASCII without spaces is allowed", clip(filename, 80))
		}
	}
	switch {
	case strings.HasSuffix(filename, ".whl"):
		// {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl
		parts := strings.Split(strings.TrimSuffix(filename, ".whl"), "-")
		if len(parts) != 5 && len(parts) != 6 {
			return nil, errs.New(errs.Invalid, "invalid wheel file name %q: expected {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl", filename)
		}
		for _, p := range parts {
			if p == "" {
				return nil, errs.New(errs.Invalid, "invalid wheel file name %q: empty component", filename)
			}
		}
		d := &dist{Filename: filename, Kind: kindWheel, Name: parts[0], Version: parts[1], PyVersion: parts[len(parts)-3], Ext: ".whl"}
		if project != "" && normalize(d.Name) != project {
			return nil, errs.New(errs.Invalid, "file %s does not belong to project %s", filename, project)
		}
		return d, nil
	case strings.HasSuffix(filename, ".tar.gz"), strings.HasSuffix(filename, ".zip"):
		ext := ".tar.gz"
		if strings.HasSuffix(filename, ".zip") {
			ext = ".zip"
		}
		stem := strings.TrimSuffix(filename, ext)
		split := -1
		if project != "" {
			// The first "-" after which the rest is the version and before
			// which the name normalizes to the project.
			for i := 0; i < len(stem); i++ {
				if stem[i] == '-' && normalize(stem[:i]) == project {
					split = i
					break
				}
			}
			if split < 0 {
				return nil, errs.New(errs.Invalid, "file %s does not belong to project %s", filename, project)
			}
		} else {
			split = strings.LastIndexByte(stem, '-')
		}
		if split <= 0 || split == len(stem)-1 {
			return nil, errs.New(errs.Invalid, "invalid sdist file name %q: expected {name}-{version}%s", filename, ext)
		}
		return &dist{Filename: filename, Kind: kindSdist, Name: stem[:split], Version: stem[split+1:], PyVersion: "source", Ext: ext}, nil
	}
	return nil, errs.New(errs.Invalid, "invalid distribution file %q: only wheels (.whl) and sdists (.tar.gz, .zip) are accepted", clip(filename, 80))
}

// clip shortens s for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
