package postgres_test

import (
	"testing"

	"github.com/cofferhq/coffer/internal/meta"
	"github.com/cofferhq/coffer/internal/meta/metatest"
	"github.com/cofferhq/coffer/internal/meta/postgres"
	"github.com/cofferhq/coffer/internal/meta/postgres/pgtest"
)

func TestConformance(t *testing.T) {
	pgtest.Require(t)
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := postgres.Open(t.Context(), pgtest.Database(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
