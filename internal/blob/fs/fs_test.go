package fs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/blob/blobtest"
	"github.com/cofferhq/coffer/internal/blob/fs"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Canceled and mismatched writes must leave no temporary file.
			left, _ := os.ReadDir(filepath.Join(s.Root(), "_uploads"))
			if len(left) > 0 {
				t.Errorf("temporary upload files left behind: %d", len(left))
			}
		})
		return s
	})
}

func TestRemoveStaleUploads(t *testing.T) {
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Create(t.Context())
	w.Write([]byte("abandoned"))
	n, _, err := s.RemoveStaleUploads(time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("fresh upload removed: n=%d err=%v", n, err)
	}
	n, b, err := s.RemoveStaleUploads(time.Now().Add(time.Hour))
	if err != nil || n != 1 || b != 9 {
		t.Fatalf("stale upload: n=%d bytes=%d err=%v", n, b, err)
	}
}
