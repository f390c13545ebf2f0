package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var opts = Options{Formats: []string{"raw", "oci"}, Getenv: func(k string) string {
	if k == "UP_PW" {
		return "secret"
	}
	return ""
}}

func TestDefaultsValid(t *testing.T) {
	cfg, err := Load("", opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Storage.DataDir != "./coffer-data" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../../examples/coffer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, Options{Formats: []string{"raw", "oci", "npm", "pypi", "maven"},
		Getenv: func(string) string { return "x" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Repositories) < 5 {
		t.Fatalf("example declares %d repositories", len(cfg.Repositories))
	}
}

func TestParseFull(t *testing.T) {
	cfg, err := Parse([]byte(`
server:
  listen: 127.0.0.1:9999
  max_upload_size: 2GiB
repositories:
  - key: raw-dev
    format: raw
    kind: local
    tier: dev
    overwrite: false
  - key: raw-remote
    format: raw
    kind: remote
    upstream: {url: "http://127.0.0.1:1/repository/x/", username: u, password_env: UP_PW, timeout: 3s}
    metadata_ttl: 10m
  - key: raw
    format: raw
    kind: virtual
    members: [raw-dev, raw-remote]
    default_deploy: raw-dev
`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MaxUploadSize != 2<<30 {
		t.Errorf("max_upload_size = %d", cfg.Server.MaxUploadSize)
	}
	r := cfg.Repositories
	if *r[0].Overwrite != false || r[1].MetadataTTL.D() != 10*time.Minute || r[1].Upstream.Timeout.D() != 3*time.Second {
		t.Errorf("repositories: %+v", r)
	}
}

func TestEveryProblemWithItsLine(t *testing.T) {
	src := `server:
  listen: nonsense
log:
  format: xml
repositories:
  - key: Bad_Key!
    format: rpmx
    kind: local
    tier: gold
  - key: rem
    format: raw
    kind: remote
  - key: virt
    format: raw
    kind: virtual
    members: [rem, ghost, virt]
    default_deploy: rem
  - key: rem
    format: raw
    kind: local
    upstream: {url: "ftp://x"}
`
	_, err := Parse([]byte(src), opts)
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want *Problems", err)
	}
	want := []struct {
		line int
		frag string
	}{
		{2, "server.listen"},
		{4, "log.format"},
		{6, "must be 1-64 characters"},
		{7, `"rpmx" is not a supported format`},
		{9, `"gold" is not one of dev, staging, release`},
		{10, "needs upstream.url"},
		{16, `member "ghost" is not a declared repository`},
		{16, "cannot contain itself"},
		{17, "is a remote repository; deployments go to a local one"},
		{18, "declared twice"},
		{21, "only remote repositories have an upstream"},
	}
	got := err.Error()
	for _, w := range want {
		found := false
		for _, pr := range p.List {
			if pr.Line == w.line && strings.Contains(pr.String(), w.frag) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing problem at line %d containing %q in:\n%s", w.line, w.frag, got)
		}
	}
}

func TestUnknownFieldsAndTypes(t *testing.T) {
	_, err := Parse([]byte("server:\n  listen: 127.0.0.1:1\n  lisen: x\nrepositories:\n  - key: a\n    format: raw\n    kind: local\n    overwrite: maybe\n"), opts)
	var p *Problems
	if !errors.As(err, &p) || len(p.List) != 2 {
		t.Fatalf("err = %v", err)
	}
	if p.List[0].Line != 3 || !strings.Contains(p.List[0].Msg, "lisen") || p.List[1].Line != 8 {
		t.Fatalf("problems = %+v", p.List)
	}
}

func TestSecretsFromEnvAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	_, err := Parse([]byte(`repositories:
  - {key: a, format: raw, kind: remote, upstream: {url: "http://127.0.0.1:1/", username: u, password_env: MISSING}}
  - {key: b, format: raw, kind: remote, upstream: {url: "http://127.0.0.1:1/", username: u, password_file: `+file+`}}
  - {key: c, format: raw, kind: remote, upstream: {url: "http://127.0.0.1:1/", password_env: UP_PW}}
`), opts)
	var p *Problems
	if !errors.As(err, &p) || len(p.List) != 2 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(p.List[0].Msg, "MISSING") || !strings.Contains(p.List[1].Msg, "needs a username") {
		t.Fatalf("problems: %v", p)
	}
}

func TestVirtualCycle(t *testing.T) {
	_, err := Parse([]byte(`repositories:
  - {key: a, format: raw, kind: virtual, members: [b]}
  - {key: b, format: raw, kind: virtual, members: [a]}
`), opts)
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Load("", Options{Getenv: func(k string) string {
		return map[string]string{"COFFER_LISTEN": "127.0.0.1:1234", "COFFER_DATA_DIR": "/tmp/x", "COFFER_LOG_FORMAT": "json"}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:1234" || cfg.Storage.DataDir != "/tmp/x" || cfg.Log.Format != "json" {
		t.Fatalf("%+v", cfg)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1024": 1024, "1KiB": 1024, "1.5GiB": 3 << 29, "10MB": 10e6, "2g": 2 << 30} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1XB", "1e30GiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
}

// FuzzParse checks the parser never panics and that whatever it accepts is
// valid on a second look.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "server: {listen: 127.0.0.1:1}",
		"repositories:\n  - {key: a, format: raw, kind: local, tier: dev}\n",
		"repositories:\n  - {key: v, format: raw, kind: virtual, members: [v]}\n",
		"repositories: [{key: r, format: raw, kind: remote, upstream: {url: 'http://x/'}, metadata_ttl: 1m}]",
		"server: [1,2", "&a [*a]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, opts)
		if err != nil {
			var p *Problems
			if !errors.As(err, &p) || len(p.List) == 0 {
				t.Fatalf("error is not a non-empty problem list: %v", err)
			}
			return
		}
		if probs := Validate(&cfg, nil, opts); len(probs) > 0 {
			t.Fatalf("accepted config fails validation: %v", probs)
		}
	})
}
