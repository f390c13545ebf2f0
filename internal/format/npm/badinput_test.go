package npm_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
	"github.com/cofferhq/coffer/internal/format/npm/npmtest"
)

// nothingStored checks that no asset, blob, upload leftover or component
// was added.
func nothingStored(t *testing.T, e *apptest.Env, before apptest.Storage, blobsBefore int) {
	t.Helper()
	after := e.Storage()
	if after.Physical != before.Physical || after.LogicalBytes != before.LogicalBytes {
		t.Errorf("storage changed: %+v -> %+v", before, after)
	}
	blobs, uploads := e.BlobFiles()
	if blobs != blobsBefore || uploads != 0 {
		t.Errorf("blob files %d -> %d, uploads left %d", blobsBefore, blobs, uploads)
	}
	for _, key := range []string{"npm-dev", "npm-small"} {
		r, _ := e.App.Repos.Repo(key)
		comps, err := e.App.Store.ListComponents(context.Background(), r.ID, "good")
		if err != nil || len(comps) > 1 || len(comps) == 1 && comps[0].Version != "1.0.0" {
			t.Errorf("versions of good in %s: %d %v", key, len(comps), err)
		}
	}
}

// doc is a valid publish document for good@<version> to mutate.
func doc(version string) (map[string]any, []byte) {
	p := npmtest.Package{Name: "good", Version: version}
	tgz := p.Tarball()
	return npmtest.PublishDocument(p, tgz, "latest", "http://x/"), tgz
}

func attachment(d map[string]any) map[string]any {
	for _, a := range d["_attachments"].(map[string]any) {
		return a.(map[string]any)
	}
	return nil
}

func versionOf(d map[string]any) map[string]any {
	for _, m := range d["versions"].(map[string]any) {
		return m.(map[string]any)
	}
	return nil
}

func TestBadPublishDocuments(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	publish(t, e, "npm-dev", npmtest.Package{Name: "good", Version: "1.0.0"}, "latest")
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	admin := e.Admin()

	valid, _ := json.Marshal(func() map[string]any { d, _ := doc("2.0.0"); return d }())
	big := npmtest.Package{Name: "good", Version: "3.0.0", Files: map[string]string{"blob.bin": strings.Repeat("x", 1)}}
	// Random-ish content so that gzip cannot shrink it under the limit.
	noise := make([]byte, 8<<10)
	rand.Read(noise)
	big.Files["blob.bin"] = base64.StdEncoding.EncodeToString(noise)

	tests := []struct {
		name   string
		repo   string
		pkg    string
		body   func() any
		status int
		parts  []string
	}{
		{"not JSON", "npm-dev", "good", func() any { return "this is not json" }, 400, []string{"malformed"}},
		{"truncated after the tarball", "npm-dev", "good", func() any { return string(valid[:len(valid)-3]) }, 400, []string{"malformed"}},
		{"trailing garbage", "npm-dev", "good", func() any { return string(valid) + "{}" }, 400, []string{"malformed"}},
		{"array", "npm-dev", "good", func() any { return "[1,2]" }, 400, []string{"malformed"}},
		{"no versions", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			delete(d, "versions")
			return d
		}, 400, nil},
		{"two versions", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			d["versions"].(map[string]any)["2.0.1"] = versionOf(d)
			return d
		}, 400, []string{"exactly one version"}},
		{"integrity mismatch", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			_, other := doc("9.0.0")
			versionOf(d)["dist"].(map[string]any)["integrity"] = npmtest.Integrity(other)
			return d
		}, 400, []string{"integrity", "good@2.0.0"}},
		{"shasum mismatch", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			versionOf(d)["dist"].(map[string]any)["shasum"] = strings.Repeat("ab", 20)
			return d
		}, 400, []string{"sha1"}},
		{"malformed integrity", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			versionOf(d)["dist"].(map[string]any)["integrity"] = "sha512-!!!"
			return d
		}, 400, []string{"integrity"}},
		{"invalid name", "npm-dev", "Bad Name", func() any {
			p := npmtest.Package{Name: "Bad Name", Version: "1.0.0"}
			return npmtest.PublishDocument(p, p.Tarball(), "latest", "http://x/")
		}, 400, []string{"invalid package name"}},
		{"uppercase name", "npm-dev", "BadName", func() any {
			p := npmtest.Package{Name: "BadName", Version: "1.0.0"}
			return npmtest.PublishDocument(p, p.Tarball(), "latest", "http://x/")
		}, 400, []string{"uppercase"}},
		{"name differs from the URL", "npm-dev", "other", func() any { d, _ := doc("2.0.0"); return d }, 400, []string{"other"}},
		{"invalid version", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			m := versionOf(d)
			m["version"] = "2.0"
			d["versions"] = map[string]any{"2.0": m}
			return d
		}, 400, []string{"semantic version"}},
		{"traversal in the tarball name", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			d["_attachments"] = map[string]any{"../../../etc/good-2.0.0.tgz": attachment(d)}
			return d
		}, 400, []string{"attachment is named"}},
		{"other tarball name", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			d["_attachments"] = map[string]any{"good-1.0.0.tgz": attachment(d)}
			return d
		}, 400, []string{"good-2.0.0.tgz"}},
		{"two attachments", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			d["_attachments"].(map[string]any)["good-2.0.0.tgz.sig"] = attachment(d)
			return d
		}, 400, []string{"exactly one attachment"}},
		{"data is not base64", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			attachment(d)["data"] = "@@@not base64@@@"
			return d
		}, 400, []string{"base64"}},
		{"length differs", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			attachment(d)["length"] = 3
			return d
		}, 400, []string{"length"}},
		{"not a gzip tarball", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			data := []byte("just some text, not gzip")
			attachment(d)["data"] = base64.StdEncoding.EncodeToString(data)
			attachment(d)["length"] = len(data)
			dist := versionOf(d)["dist"].(map[string]any)
			dist["integrity"], dist["shasum"] = npmtest.Integrity(data), npmtest.Shasum(data)
			return d
		}, 400, []string{"gzip"}},
		{"oversized attachment", "npm-small", "good", func() any {
			return npmtest.PublishDocument(big, big.Tarball(), "latest", "http://x/")
		}, 413, []string{"limit", "npm-small"}},
		{"republish", "npm-dev", "good", func() any { d, _ := doc("1.0.0"); return d }, 403,
			[]string{"cannot publish over the previously published versions: 1.0.0"}},
		{"bad dist-tag", "npm-dev", "good", func() any {
			d, _ := doc("2.0.0")
			d["dist-tags"] = map[string]string{"1.x": "2.0.0"}
			return d
		}, 400, []string{"dist-tag"}},
		{"metadata too deep", "npm-dev", "good", func() any {
			return `{"name":"good","x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`
		}, 400, []string{"nesting"}},
	}
	if len(big.Tarball()) <= 2048 {
		t.Fatalf("the oversized tarball is only %d bytes", len(big.Tarball()))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := putDoc(admin, tt.repo, tt.pkg, tt.body())
			wantError(t, resp, body, tt.status, tt.parts...)
			nothingStored(t, e.WithT(t), before, blobsBefore)
		})
	}
	// The version still installs as it was.
	p, _, _ := getPackument(t, admin, "npm-dev", "good")
	if len(p.Versions) != 1 || p.DistTags["latest"] != "1.0.0" {
		t.Errorf("after refusals: %v %v", keys(p.Versions), p.DistTags)
	}
	// Traversal in a tarball URL never reaches the store.
	for _, path := range []string{"/repository/npm-dev/good/-/..%2f..%2fx.tgz", "/repository/npm-dev/good/-/%2e%2e/x.tgz",
		"/repository/npm-dev/good/-/good-1.0.0.tgz%2f..%2f..%2fx"} {
		resp, body := admin.Do(http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusBadRequest || npmError(t, body) == "" {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// Yarn 2+ puts the attachment before the versions: the tarball is held
// aside until the metadata arrives, with the same checks.
func TestPublishAttachmentFirst(t *testing.T) {
	e := apptest.New(t, hostedConfig)
	p := npmtest.Package{Name: "@acme/first", Version: "1.0.0"}
	tgz := p.Tarball()
	d := npmtest.PublishDocument(p, tgz, "latest", "http://x/")
	att, _ := json.Marshal(d["_attachments"])
	vers, _ := json.Marshal(d["versions"])
	body := `{"_id":"@acme/first","_attachments":` + string(att) + `,"name":"@acme/first","dist-tags":{"latest":"1.0.0"},"versions":` + string(vers) + `}`
	resp, out := putDoc(e.Admin(), "npm-dev", "@acme/first", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: %d %s", resp.StatusCode, out)
	}
	resp, got := e.Admin().Do(http.MethodGet, "/repository/npm-dev/@acme/first/-/first-1.0.0.tgz", nil)
	if resp.StatusCode != http.StatusOK || got != string(tgz) {
		t.Fatalf("tarball: %d", resp.StatusCode)
	}
	// And an integrity mismatch in that order stores nothing either.
	before := e.Storage()
	blobsBefore, _ := e.BlobFiles()
	p2 := npmtest.Package{Name: "good", Version: "1.0.0"}
	d2 := npmtest.PublishDocument(p2, p2.Tarball(), "latest", "http://x/")
	att, _ = json.Marshal(d2["_attachments"])
	versionOf(d2)["dist"].(map[string]any)["shasum"] = strings.Repeat("0", 40)
	vers, _ = json.Marshal(d2["versions"])
	body = `{"_attachments":` + string(att) + `,"name":"good","versions":` + string(vers) + `}`
	resp, out = putDoc(e.Admin(), "npm-dev", "good", body)
	wantError(t, resp, out, http.StatusBadRequest, "integrity")
	nothingStored(t, e, before, blobsBefore)
}
