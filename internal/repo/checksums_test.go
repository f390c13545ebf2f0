package repo_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// An upload of unknown size gets its md5 computed after the commit; the
// download then carries it.
func TestDeferredChecksumsAreFilledIn(t *testing.T) {
	e := apptest.New(t, "repositories:\n  - {key: r, format: raw, kind: local}\n")
	body := bytes.Repeat([]byte("deferred md5 "), 100_000)
	// A reader that hides its length makes the request chunked.
	req := e.Request(http.MethodPut, "/repository/r/big.bin", io.MultiReader(bytes.NewReader(body)), "", "")
	if resp, msg := e.Send(req); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d %s", resp.StatusCode, msg)
	}
	wantMD5 := md5.Sum(body)
	wantSHA1 := sha1.Sum(body)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _ := e.Do(http.MethodHead, "/repository/r/big.bin", nil)
		got := resp.Header.Get("X-Checksum-Md5")
		if got == hex.EncodeToString(wantMD5[:]) {
			if resp.Header.Get("X-Checksum-Sha1") != hex.EncodeToString(wantSHA1[:]) {
				t.Fatalf("sha1 = %q", resp.Header.Get("X-Checksum-Sha1"))
			}
			return
		}
		if got != "" {
			t.Fatalf("md5 = %q, want %x", got, wantMD5)
		}
		if time.Now().After(deadline) {
			t.Fatal("md5 never filled in")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
