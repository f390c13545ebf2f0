// Package apptest starts a whole Coffer in-process on a loopback httptest
// server, with real SQLite and real blob files in a temporary directory,
// for handler and integration tests. $COFFER_TEST_BACKENDS selects other
// back-ends for every Env (see UseBackends): the same tests then run on
// PostgreSQL and/or S3.
package apptest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/app"
	"github.com/cofferhq/coffer/internal/config"
)

// AdminPassword is the admin's password in every Env.
const AdminPassword = "apptest-admin-pw"

// Env is a running in-process Coffer.
type Env struct {
	T   testing.TB
	App *app.App
	Srv *httptest.Server
	URL string
}

// New starts Coffer with the repositories declared in yamlRepos (the
// `repositories:` list of a configuration file, or a whole file).
func New(t testing.TB, yamlConfig string) *Env {
	t.Helper()
	return NewIn(t, t.TempDir(), yamlConfig)
}

// NewIn is New with the data directory dir (one restored from a backup, say).
func NewIn(t testing.TB, dir, yamlConfig string) *Env {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlConfig), config.Options{Formats: app.FormatNames()})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage.DataDir = dir
	secrets := UseBackends(t, &cfg.Storage)
	return NewOn(t, cfg.Storage, secrets, yamlConfig)
}

// NewOn is New on given storage (back-ends provisioned by UseBackends, and
// the environment their secrets are read from), for tests that prepare the
// stores before the server starts (a restore, say).
func NewOn(t testing.TB, st config.Storage, secrets map[string]string, yamlConfig string) *Env {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlConfig), config.Options{Formats: app.FormatNames()})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Storage = st
	cfg.Log.Level = "warn"
	if testing.Verbose() {
		cfg.Log.Level = "debug"
	}
	// The listener comes first so that the base URL is known.
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	a, err := app.New(context.Background(), cfg, base, app.Options{
		Stderr: io.Discard,
		Getenv: func(k string) string {
			if k == "COFFER_ADMIN_PASSWORD" {
				return AdminPassword
			}
			return secrets[k]
		},
	})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	a.Server.SetReady(true)
	srv.Config.Handler = a.Server
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &Env{T: t, App: a, Srv: srv, URL: base}
}

// Request builds a request; user "" means admin, "-" means anonymous, and
// any other user is sent with password pw.
func (e *Env) Request(method, path string, body io.Reader, user, pw string) *http.Request {
	e.T.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	switch user {
	case "":
		req.SetBasicAuth("admin", AdminPassword)
	case "-":
	default:
		req.SetBasicAuth(user, pw)
	}
	return req
}

// Do sends a request as admin and returns the response with its body read.
func (e *Env) Do(method, path string, body io.Reader, header ...string) (*http.Response, string) {
	e.T.Helper()
	req := e.Request(method, path, body, "", "")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.Send(req)
}

// Send sends req and returns the response with its body read.
func (e *Env) Send(req *http.Request) (*http.Response, string) {
	e.T.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.T.Fatal(err)
	}
	return resp, string(b)
}

// Put uploads content as admin and fails the test unless it is stored.
func (e *Env) Put(repoKey, path, content string) {
	e.T.Helper()
	resp, body := e.Do(http.MethodPut, "/repository/"+repoKey+"/"+path, strings.NewReader(content))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		e.T.Fatalf("PUT %s/%s: %d %s", repoKey, path, resp.StatusCode, body)
	}
}
