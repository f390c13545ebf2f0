package apptest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/blob/s3/s3test"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/meta/postgres/pgtest"
)

// BackendsEnv names the variable selecting the back-ends of test
// environments: "sqlite+fs" (the default), "pg+fs", "sqlite+s3" or "pg+s3".
const BackendsEnv = "COFFER_TEST_BACKENDS"

// Backends returns the metadata and blob back-ends $COFFER_TEST_BACKENDS asks for.
func Backends() (metaName, blobName string) {
	v := os.Getenv(BackendsEnv)
	if v == "" {
		return "sqlite", "fs"
	}
	m, b, _ := strings.Cut(v, "+")
	return m, b
}

// UseBackends points st at the back-ends $COFFER_TEST_BACKENDS selects: a
// fresh PostgreSQL database and/or a fresh bucket, both removed when t
// ends. It returns the environment the app must see for their secrets.
func UseBackends(t testing.TB, st *config.Storage) map[string]string {
	t.Helper()
	env := map[string]string{}
	m, b := Backends()
	switch m {
	case "sqlite":
	case "pg":
		st.Database.Postgres = &config.Postgres{DSN: pgtest.Database(t)}
	default:
		t.Fatalf("%s=%q: metadata back-end must be sqlite or pg", BackendsEnv, os.Getenv(BackendsEnv))
	}
	switch b {
	case "fs":
	case "s3":
		srv := s3test.Start(t)
		st.Blobs.S3 = &config.S3{Endpoint: srv.Endpoint, Bucket: srv.Bucket(t), AccessKey: srv.AccessKey,
			SecretKeyEnv: "COFFER_TEST_S3_SECRET", PathStyle: true}
		env["COFFER_TEST_S3_SECRET"] = srv.SecretKey
	default:
		t.Fatalf("%s=%q: blob back-end must be fs or s3", BackendsEnv, os.Getenv(BackendsEnv))
	}
	return env
}

// StoreStreams reports whether e's blob store lets remote fills stream to
// clients while they are written (blob.Peeker: the fs driver, not S3).
func StoreStreams(e *Env) bool {
	w, err := e.App.Blobs.Create(context.Background())
	if err != nil {
		e.T.Fatal(err)
	}
	defer w.Cancel(context.Background())
	_, ok := w.(blob.Peeker)
	return ok
}
