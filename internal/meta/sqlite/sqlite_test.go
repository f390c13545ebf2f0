package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/metatest"
	"github.com/cofferhq/coffer/internal/meta/sqlite"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRepo(t.Context(), &meta.Repository{Key: "k", Format: "raw", Kind: "local"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(t.Context(), path) // migrations already applied: no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetRepo(t.Context(), "k"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// Upload-session rows are written without waiting for the disk, and the
// writer connection is back to synchronous=FULL afterwards (what every
// commit acknowledging content relies on), also when the statement fails
// or its context is canceled.
func TestLaxUploadWritesLeaveTheWriterDurable(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	full := func(when string) {
		t.Helper()
		var mode int
		if err := s.Pool().QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&mode); err != nil || mode != 2 {
			t.Fatalf("%s: writer synchronous = %d (%v), want 2 (FULL)", when, mode, err)
		}
	}
	u := &meta.Upload{RepoID: "no-such-repo", Name: "n", State: []byte("{}")}
	err = s.CreateUpload(t.Context(), u) // refused by the foreign key
	full("after a failed lax insert")
	r := &meta.Repository{Key: "r", Format: "raw", Kind: "local", Tier: "dev"}
	if err := s.CreateRepo(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	u.RepoID = r.ID
	if err := s.CreateUpload(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	u.Size = 5
	if err := s.UpdateUpload(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	full("after lax writes")
	if got, err := s.GetUpload(t.Context(), u.ID); err != nil || got.Size != 5 {
		t.Fatalf("upload after lax writes: %+v %v", got, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.DeleteUpload(ctx, u.ID)
	full("after a canceled lax write")
	if err := s.DeleteUpload(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUpload(t.Context(), u.ID); err == nil {
		t.Fatal("deleting a missing upload succeeded")
	}
}
