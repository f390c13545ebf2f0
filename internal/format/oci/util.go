package oci

import (
	"sort"

	"github.com/opencontainers/image-spec/specs-go"
)

func sortStrings(s []string) { sort.Strings(s) }

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }
