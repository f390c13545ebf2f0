package pypi_test

import (
	"testing"

	"github.com/cofferhq/coffer/internal/format/pypi"
)

// FuzzParseCoordinates feeds promotion and pin coordinates (client input)
// to the parser: it must never panic, and what it accepts names something.
func FuzzParseCoordinates(f *testing.F) {
	for _, s := range []string{"acme-lib==1.0.0", "Acme_Lib == 2.0rc1", "==1", "a=="} {
		f.Add(s)
	}
	p := pypi.New()
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
