package npm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cofferhq/coffer/internal/errs"
)

// collect parses data, gathering each attachment's decoded bytes.
func collect(r io.Reader) (*document, map[string][]byte, error) {
	got := map[string][]byte{}
	doc, err := parseDocument(r, func(_ *document, name string) (io.Writer, error) {
		b := &bytes.Buffer{}
		got[name] = nil
		return writerFunc(func(p []byte) (int, error) {
			b.Write(p)
			got[name] = b.Bytes()
			return len(p), nil
		}), nil
	})
	return doc, got, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestParseDocumentFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// One byte at a time exercises every buffer boundary.
			doc, got, err := collect(iotest.OneByteReader(bytes.NewReader(data)))
			bad := strings.HasPrefix(filepath.Base(f), "bad-")
			if bad {
				if errs.KindOf(err) != errs.Invalid {
					t.Fatalf("want an Invalid error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstStdlib(t, data, doc, got)
		})
	}
}

// checkAgainstStdlib compares a successful parse with encoding/json.
func checkAgainstStdlib(t *testing.T, data []byte, doc *document, got map[string][]byte) {
	t.Helper()
	var std map[string]json.RawMessage
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("parser accepted what encoding/json refuses: %v", err)
	}
	for k, raw := range doc.Fields {
		if !bytes.Equal(compact(raw), compact(std[k])) {
			t.Fatalf("member %q: %s, encoding/json: %s", k, raw, std[k])
		}
	}
	var atts map[string]struct {
		Data   *string `json:"data"`
		Length *int64  `json:"length"`
	}
	if raw, ok := std["_attachments"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &atts); err != nil {
			t.Fatalf("parser accepted _attachments that encoding/json refuses: %v", err)
		}
	}
	for name, a := range atts {
		if a.Data == nil {
			continue
		}
		want, err := base64.StdEncoding.DecodeString(*a.Data)
		if err != nil {
			t.Fatalf("parser accepted data encoding/json+base64 refuse: %v", err)
		}
		if !bytes.Equal(got[name], want) && !(len(want) == 0 && got[name] == nil) {
			t.Fatalf("attachment %q: %d bytes, want %d", name, len(got[name]), len(want))
		}
	}
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.Bytes()
}

func TestParseDocumentLimits(t *testing.T) {
	huge := `{"readme":"` + strings.Repeat("x", maxMeta) + `"}`
	if _, _, err := collect(strings.NewReader(huge)); errs.KindOf(err) != errs.TooLarge {
		t.Errorf("oversized metadata: %v", err)
	}
	// The attachment's data does not count against the metadata budget.
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x1f, 0x8b, 1, 2}, maxMeta/3))
	big := `{"_attachments":{"a.tgz":{"data":"` + data + `","length":` + itoa(4*(maxMeta/3)) + `}}}`
	doc, got, err := collect(strings.NewReader(big))
	if err != nil || len(got["a.tgz"]) != 4*(maxMeta/3) || doc.Attachments[0].Size != int64(4*(maxMeta/3)) {
		t.Errorf("large attachment: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func FuzzParseDocument(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"a":1,"_attachments":{"x.tgz":{"data":"AAAA\n","length":3}}}`))
	f.Add([]byte(`{"a":"\ud83d\ude00","b":[true,false,null,-1.5e3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, got, err := collect(bytes.NewReader(data))
		if err != nil {
			if k := errs.KindOf(err); k != errs.Invalid && k != errs.TooLarge {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			return
		}
		checkAgainstStdlib(t, data, doc, got)
	})
}
