package apptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/blob"
)

// Caller sends requests to an Env with one identity: the admin, an
// anonymous client, a user with a password, or an API token.
type Caller struct {
	e          *Env
	user, pw   string
	bearer     string
	anonymous  bool
	noRedirect bool
}

// Admin is the admin account.
func (e *Env) Admin() Caller { return Caller{e: e, user: "admin", pw: AdminPassword} }

// Anonymous sends no credentials.
func (e *Env) Anonymous() Caller { return Caller{e: e, anonymous: true} }

// As sends HTTP Basic credentials (a password, or a token as the password).
func (e *Env) As(user, pw string) Caller { return Caller{e: e, user: user, pw: pw} }

// Bearer sends "Authorization: Bearer <secret>".
func (e *Env) Bearer(secret string) Caller { return Caller{e: e, bearer: secret} }

// NoRedirect returns c that reports redirects instead of following them.
func (c Caller) NoRedirect() Caller { c.noRedirect = true; return c }

func (c Caller) authorize(req *http.Request) {
	switch {
	case c.anonymous:
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	default:
		req.SetBasicAuth(c.user, c.pw)
	}
}

// Request builds a request with c's credentials; header is name, value pairs.
func (c Caller) Request(method, path string, body io.Reader, header ...string) *http.Request {
	c.e.T.Helper()
	req, err := http.NewRequest(method, c.e.URL+path, body)
	if err != nil {
		c.e.T.Fatal(err)
	}
	c.authorize(req)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// Send sends req and returns the response with its body read.
func (c Caller) Send(req *http.Request) (*http.Response, string) {
	c.e.T.Helper()
	client := http.DefaultClient
	if c.noRedirect {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		c.e.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.e.T.Fatal(err)
	}
	return resp, string(b)
}

// Do sends a request and returns the response with its body read.
func (c Caller) Do(method, path string, body io.Reader, header ...string) (*http.Response, string) {
	c.e.T.Helper()
	return c.Send(c.Request(method, path, body, header...))
}

// JSON sends in (when not nil) as a JSON body and returns the response with
// its body read.
func (c Caller) JSON(method, path string, in any) (*http.Response, string) {
	c.e.T.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.e.T.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req := c.Request(method, path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.Send(req)
}

// MustJSON is JSON that fails the test unless the status is want, and
// decodes the response body into out (when not nil).
func (c Caller) MustJSON(method, path string, in any, want int, out any) {
	c.e.T.Helper()
	resp, body := c.JSON(method, path, in)
	if resp.StatusCode != want {
		c.e.T.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			c.e.T.Fatalf("%s %s: decoding %q: %v", method, path, body, err)
		}
	}
}

// CreateUser creates a user (as admin) with a password, in the given groups
// (which must exist).
func (e *Env) CreateUser(name, pw string, groups ...string) {
	e.T.Helper()
	e.Admin().MustJSON(http.MethodPost, "/api/v1/users", map[string]any{"name": name, "password": pw, "groups": groups}, http.StatusCreated, nil)
}

// CreateGroup creates a group (as admin) with members.
func (e *Env) CreateGroup(name string, members ...string) {
	e.T.Helper()
	if members == nil {
		members = []string{}
	}
	e.Admin().MustJSON(http.MethodPost, "/api/v1/groups", map[string]any{"name": name, "members": members}, http.StatusCreated, nil)
}

// Grant gives actions on a repository pattern to a principal ("user",
// "group" or "anonymous") and returns the permission's id.
func (e *Env) Grant(principalType, principal, repos string, actions ...string) string {
	e.T.Helper()
	var out struct {
		ID string `json:"id"`
	}
	e.Admin().MustJSON(http.MethodPost, "/api/v1/permissions", map[string]any{
		"principal_type": principalType, "principal": principal, "repos": repos, "actions": actions,
	}, http.StatusCreated, &out)
	return out.ID
}

// CreateToken creates an API token as c (body is the TokenCreate request)
// and returns its secret.
func (c Caller) CreateToken(body map[string]any) string {
	c.e.T.Helper()
	var out struct {
		Token string `json:"token"`
	}
	c.MustJSON(http.MethodPost, "/api/v1/tokens", body, http.StatusCreated, &out)
	if out.Token == "" {
		c.e.T.Fatalf("token creation returned no secret")
	}
	return out.Token
}

// Storage is the body of GET /api/v1/storage.
type Storage struct {
	Repositories []struct {
		Key    string `json:"key"`
		Assets int64  `json:"assets"`
		Bytes  int64  `json:"bytes"`
	} `json:"repositories"`
	LogicalBytes int64 `json:"logical_bytes"`
	Physical     struct {
		Blobs int64 `json:"blobs"`
		Bytes int64 `json:"bytes"`
	} `json:"physical"`
	DedupeRatio float64 `json:"dedupe_ratio"`
}

// Storage returns the storage usage as the API reports it.
func (e *Env) Storage() Storage {
	e.T.Helper()
	var s Storage
	e.Admin().MustJSON(http.MethodGet, "/api/v1/storage", nil, http.StatusOK, &s)
	return s
}

// BlobFiles counts the files in the blob store: committed blobs and
// in-progress uploads.
func (e *Env) BlobFiles() (blobs, uploads int) {
	e.T.Helper()
	rooted, ok := e.App.Blobs.(interface{ Root() string })
	if !ok {
		return e.storeCounts()
	}
	root := rooted.Root()
	count := func(dir string) int {
		n := 0
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				n++
			}
			return nil
		})
		if err != nil {
			e.T.Fatal(err)
		}
		return n
	}
	return count(filepath.Join(root, "sha256")), count(filepath.Join(root, "_uploads"))
}

// Metrics returns the Prometheus exposition text of /metrics.
func (e *Env) Metrics() string {
	e.T.Helper()
	resp, body := e.Anonymous().Do(http.MethodGet, "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		e.T.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return body
}

// RawResponse is what a raw request got back.
type RawResponse struct {
	Status int
	Header http.Header
	Body   string
}

// BasicAuth is the Authorization header value of the admin, for raw requests.
func BasicAuth(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// Dial opens a TCP connection to the server, closed when the test ends.
func (e *Env) Dial() net.Conn {
	e.T.Helper()
	c, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		e.T.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	e.T.Cleanup(func() { c.Close() })
	return c
}

// Raw sends a request exactly as written (so that the target is not
// cleaned or re-escaped by a client): the request line "METHOD target",
// the admin's credentials unless header has an Authorization, the given
// header lines, and body with its Content-Length. It reads one response.
func (e *Env) Raw(method, target string, body string, header ...string) RawResponse {
	e.T.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + e.Srv.Listener.Addr().String() + "\r\nConnection: close\r\n")
	hasAuth := false
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Authorization") {
			hasAuth = true
		}
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	if !hasAuth {
		b.WriteString("Authorization: " + BasicAuth("admin", AdminPassword) + "\r\n")
	}
	if body != "" || method == http.MethodPut || method == http.MethodPost {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	c := e.Dial()
	if _, err := io.WriteString(c, b.String()); err != nil {
		e.T.Fatal(err)
	}
	return e.ReadResponse(c, method)
}

// ReadResponse reads one response from c.
func (e *Env) ReadResponse(c net.Conn, method string) RawResponse {
	e.T.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		e.T.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatalf("reading the response body: %v", err)
	}
	return RawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(rb)}
}

// WithT returns a copy of e that reports failures to t (a subtest's).
func (e *Env) WithT(t testing.TB) *Env {
	c := *e
	c.T = t
	return &c
}

// storeCounts counts blobs and uploads in progress of a store that keeps
// no files here (S3): blobs by walking it, uploads where it can say.
func (e *Env) storeCounts() (blobs, uploads int) {
	e.T.Helper()
	ctx := context.Background()
	if err := e.App.Blobs.Walk(ctx, func(blob.Info) error { blobs++; return nil }); err != nil {
		e.T.Fatal(err)
	}
	if p, ok := e.App.Blobs.(interface {
		PendingUploads(context.Context) (int, error)
	}); ok {
		n, err := p.PendingUploads(ctx)
		if err != nil {
			e.T.Fatal(err)
		}
		uploads = n
	}
	return blobs, uploads
}
