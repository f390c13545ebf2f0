package raw_test

import (
	"testing"

	"github.com/cofferhq/coffer/internal/format/raw"
)

// FuzzParseCoordinates feeds promotion and pin coordinates (client input)
// to the parser: it must never panic, and what it accepts names something.
func FuzzParseCoordinates(f *testing.F) {
	for _, s := range []string{"builds/app-1.0.tgz", "/a/b", "../x", "a//b"} {
		f.Add(s)
	}
	p := raw.New()
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
