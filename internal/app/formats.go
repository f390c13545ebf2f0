package app

import (
	"github.com/cofferhq/coffer/internal/format"
	"github.com/cofferhq/coffer/internal/format/maven"
	"github.com/cofferhq/coffer/internal/format/npm"
	"github.com/cofferhq/coffer/internal/format/oci"
	"github.com/cofferhq/coffer/internal/format/pypi"
	"github.com/cofferhq/coffer/internal/format/raw"
)

// Formats lists every format this binary serves: one line each.
func Formats() []format.Format {
	return []format.Format{
		raw.New(),
		oci.New(),
		pypi.New(),
		npm.New(),
		maven.New(),
	}
}

// FormatNames lists the names of Formats.
func FormatNames() []string {
	var out []string
	for _, f := range Formats() {
		out = append(out, f.Name())
	}
	return out
}
