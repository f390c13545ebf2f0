package oci_test

import (
	"testing"

	"github.com/cofferhq/coffer/internal/format/oci"
)

// FuzzParseCoordinates feeds promotion and pin coordinates (client input)
// to the parser: it must never panic, and what it accepts names something.
func FuzzParseCoordinates(f *testing.F) {
	for _, s := range []string{"team/api:v2.3.0", "team/api@sha256:0000000000000000000000000000000000000000000000000000000000000000", "a/b/c:latest", "x@sha256:zz", ":"} {
		f.Add(s)
	}
	p := oci.New()
	f.Fuzz(func(t *testing.T, s string) {
		a, err := p.ParseCoordinates(s)
		if err != nil {
			return
		}
		if a.Name == "" || (a.Version == "" && a.Tag == "" && a.Path == "") {
			t.Fatalf("%q parsed to %+v", s, a)
		}
	})
}
