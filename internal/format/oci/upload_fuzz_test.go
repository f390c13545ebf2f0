package oci_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"

	"github.com/cofferhq/coffer/internal/app/apptest"
)

// FuzzUploadSession drives the chunked-upload state machine with a random
// sequence of operations (chunks in and out of order, status, finish with
// right and wrong digests, cancel) and checks what a client can observe:
// no 5xx ever, ranges that match what was acknowledged, and a finished blob
// that is exactly the acknowledged bytes.
func FuzzUploadSession(f *testing.F) {
	e := apptest.New(f, "repositories:\n  - {key: d, format: oci, kind: local, tier: dev}\n")
	f.Add([]byte{0, 10, 0, 20, 2, 3})
	f.Add([]byte{0, 5, 1, 5, 0, 7, 4})
	f.Add([]byte{3, 0, 200, 2, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		e := e.WithT(t)
		resp, _ := e.Do("POST", "/v2/d/fuzz/blobs/uploads/", nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			t.Fatalf("start: %d", resp.StatusCode)
		}
		var acked []byte
		open := true
		for i := 0; i+1 < len(ops) && open; i += 2 {
			op, arg := ops[i]%6, int(ops[i+1])
			chunk := bytes.Repeat([]byte{byte(i)}, arg)
			switch op {
			case 0, 1: // PATCH a chunk, at the right offset (0) or a wrong one (1)
				start := len(acked)
				if op == 1 {
					start += 1 + arg%3
				}
				if len(chunk) == 0 {
					continue
				}
				resp, body := e.Do("PATCH", loc, bytes.NewReader(chunk), "Content-Range", fmt.Sprintf("%d-%d", start, start+len(chunk)-1))
				switch {
				case op == 0 && resp.StatusCode == http.StatusAccepted:
					acked = append(acked, chunk...)
				case op == 1 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
				default:
					t.Fatalf("patch op %d: %d %s", op, resp.StatusCode, body)
				}
				if want := rangeOf(len(acked)); resp.Header.Get("Range") != want {
					t.Fatalf("after patch op %d: Range %q, want %q", op, resp.Header.Get("Range"), want)
				}
			case 2: // status
				resp, _ := e.Do("GET", loc, nil)
				if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != rangeOf(len(acked)) {
					t.Fatalf("status: %d %q, acked %d", resp.StatusCode, resp.Header.Get("Range"), len(acked))
				}
			case 3: // finish with a wrong digest: refused, session gone
				resp, _ := e.Do("PUT", loc+"?digest=sha256:"+fmt.Sprintf("%064x", arg), nil)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("wrong digest: %d", resp.StatusCode)
				}
				open = false
			case 4: // finish with the right digest (and a last chunk)
				all := append(append([]byte{}, acked...), chunk...)
				d := fmt.Sprintf("sha256:%x", sha256.Sum256(all))
				resp, body := e.Do("PUT", loc+"?digest="+d, bytes.NewReader(chunk))
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("finish: %d %s", resp.StatusCode, body)
				}
				resp, got := e.Do("GET", "/v2/d/fuzz/blobs/"+d, nil)
				if resp.StatusCode != 200 || got != string(all) {
					t.Fatalf("finished blob: %d, %d bytes, want %d", resp.StatusCode, len(got), len(all))
				}
				open = false
			case 5: // cancel
				resp, _ := e.Do("DELETE", loc, nil)
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("cancel: %d", resp.StatusCode)
				}
				open = false
			}
		}
		if !open {
			if resp, _ := e.Do("GET", loc, nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("a finished session still answers: %d", resp.StatusCode)
			}
		} else {
			e.Do("DELETE", loc, nil)
		}
	})
}

func rangeOf(n int) string {
	if n == 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", n-1)
}
