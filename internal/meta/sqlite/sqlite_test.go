package sqlite_test

import (
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
