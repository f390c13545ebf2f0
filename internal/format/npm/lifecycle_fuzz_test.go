package npm_test

import (
	"testing"

	"github.com/cofferhq/coffer/internal/format/npm"
)

// FuzzParseCoordinates feeds promotion and pin coordinates (client input)
// to the parser: it must never panic, and what it accepts names something.
func FuzzParseCoordinates(f *testing.F) {
	for _, s := range []string{"@acme/ui@1.4.0", "left-pad@1.3.0", "@a@", "noversion"} {
		f.Add(s)
	}
	p := npm.New()
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
