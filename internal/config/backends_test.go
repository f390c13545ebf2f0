package config

import (
	"strings"
	"testing"
)

func TestScaleOutBackends(t *testing.T) {
	good := `storage:
  database:
    postgres: {dsn: "postgres://coffer@db:5432/coffer", password_env: UP_PW, max_conns: 10}
  blobs:
    s3: {endpoint: "https://s3.example.com", bucket: b, access_key: AK, secret_key_env: UP_PW, path_style: true, part_size: 8MiB, redirect: true}
`
	cfg, err := Parse([]byte(good), opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Database.Postgres.MaxConns != 10 || cfg.Storage.Blobs.S3.PartSize != 8<<20 || !cfg.Storage.Blobs.S3.Redirect {
		t.Fatalf("parsed: %+v %+v", cfg.Storage.Database.Postgres, cfg.Storage.Blobs.S3)
	}

	bad := `storage:
  database:
    postgres: {dsn: "postgres://coffer:hunter2@db/coffer", password_env: NOT_SET}
  blobs:
    s3: {endpoint: "ftp://x/y", part_size: 1MiB}
`
	_, err = Parse([]byte(bad), opts)
	if err == nil {
		t.Fatal("bad back-ends accepted")
	}
	for _, want := range []string{
		"line 3: storage.database.postgres.dsn: holds a password",
		"storage.database.postgres.password_env: names NOT_SET, which is not set",
		"line 5: storage.blobs.s3.endpoint:",
		"storage.blobs.s3.bucket: is required",
		"storage.blobs.s3.access_key: is required",
		"storage.blobs.s3.secret_key: is required",
		"storage.blobs.s3.part_size: must be at least 5MiB",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems do not say %q:\n%v", want, err)
		}
	}
}
