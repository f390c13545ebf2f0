package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/config"
)

// maxErrorBody bounds how much of an error answer is read; maxAPIBody bounds
// a management API answer (they are small, paginated JSON documents).
const (
	maxErrorBody = 1 << 20
	maxAPIBody   = 64 << 20
)

// Client talks to one Coffer server: the management API under /api/v1 and
// the repository URLs under /repository. It sends a bearer API token when
// Token is set, else HTTP Basic credentials when User is set, else nothing.
type Client struct {
	Base     string // scheme://host[:port][/prefix], without a trailing slash
	Token    string
	User     string
	Password string
	HTTP     *http.Client
	// SavedLogin is true when Token comes from `coffer login`; an
	// authentication failure then suggests logging in again.
	SavedLogin bool
	// DefaultServer is true when no server was given; a failure to connect
	// then says how to name one.
	DefaultServer bool
}

// NewClient returns a client for server, an http(s) URL; a bare host:port
// means http://host:port.
func NewClient(server string) (*Client, error) {
	base, err := normalizeServer(server)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 15 * time.Second
	// Uploads send "Expect: 100-continue" so that a refusal (permissions,
	// immutability, quota) arrives before the body is sent; a server that
	// does not answer the expectation gets the body after this delay.
	tr.ExpectContinueTimeout = 2 * time.Second
	return &Client{Base: base, HTTP: &http.Client{Transport: tr}}, nil
}

func normalizeServer(server string) (string, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return "", errors.New("no server given")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q is not an http(s) URL", server)
	}
	if u.User != nil {
		return "", fmt.Errorf("server %q: give credentials with --user/--password or --token, not in the URL", server)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// APIError is an error answer from the server, in either of its shapes:
// {"error":{"code","message","problems"}} (management API) or
// {"errors":[{"status","message"}]} (raw repositories).
type APIError struct {
	Status   int
	Code     string
	Message  string
	Problems []config.Problem
	// Hint is advice from the client itself (such as logging in again).
	Hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	msg := e.Message
	if len(e.Problems) > 0 {
		// The server's message repeats the problems; keep its first line.
		msg, _, _ = strings.Cut(msg, "\n")
		msg = strings.TrimSuffix(strings.TrimSpace(msg), ":")
	}
	b.WriteString(msg)
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(":")
		}
		b.WriteString("\n  - " + p.String())
	}
	if e.Hint != "" {
		b.WriteString("\n" + e.Hint)
	}
	return b.String()
}

// parseError builds an APIError from an error answer.
func parseError(status int, header http.Header, body []byte) *APIError {
	e := &APIError{Status: status}
	var api struct {
		Error *struct {
			Code     string           `json:"code"`
			Message  string           `json:"message"`
			Problems []config.Problem `json:"problems"`
		} `json:"error"`
		Errors []struct {
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	var npm struct {
		Error string `json:"error"`
	}
	switch {
	case json.Unmarshal(body, &api) == nil && api.Error != nil && api.Error.Message != "":
		e.Code, e.Message, e.Problems = api.Error.Code, api.Error.Message, api.Error.Problems
	case len(api.Errors) > 0:
		msgs := make([]string, 0, len(api.Errors))
		for _, x := range api.Errors {
			if x.Message != "" {
				msgs = append(msgs, x.Message)
			}
			if e.Code == "" {
				e.Code = x.Code
			}
		}
		e.Message = strings.Join(msgs, "; ")
	case json.Unmarshal(body, &npm) == nil && npm.Error != "":
		e.Message = npm.Error
	default:
		text := strings.TrimSpace(string(body))
		if strings.HasPrefix(strings.ToLower(header.Get("Content-Type")), "text/html") {
			text = "" // a proxy's error page says nothing useful in a terminal
		}
		if len(text) > 300 {
			text = text[:300] + "..."
		}
		e.Message = text
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("the server answered %d %s", status, http.StatusText(status))
	}
	return e
}

// URL returns the absolute URL of an already escaped path (starting with
// "/") and optional query.
func (c *Client) URL(escapedPath string, query url.Values) string {
	u := c.Base + escapedPath
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// NewRequest builds a request with the client's credentials.
func (c *Client) NewRequest(ctx context.Context, method, escapedPath string, query url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL(escapedPath, query), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "coffer-cli")
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	return req, nil
}

// Do sends req. An answer of 400 or more becomes an *APIError (its body is
// read and closed); any other answer is returned with its body open.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			if errors.Is(ue.Err, context.Canceled) {
				return nil, errors.New("interrupted")
			}
			if c.DefaultServer {
				return nil, fmt.Errorf("cannot reach %s (the default server): %v\n(name the server with --server or COFFER_SERVER, or run `coffer login --server URL`)", c.Base, ue.Err)
			}
			return nil, fmt.Errorf("cannot reach %s: %v", c.Base, ue.Err)
		}
		return nil, err
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := parseError(resp.StatusCode, resp.Header, body)
	if resp.StatusCode == http.StatusUnauthorized {
		switch {
		case c.SavedLogin:
			e.Hint = "(the saved login was refused: run `coffer login` again)"
		case c.Token == "" && c.User == "":
			e.Hint = "(no credentials were sent: run `coffer login`, or give --token or --user)"
		}
	}
	return nil, e
}

// JSON sends a management API request with an optional JSON body and returns
// the answer's body; when out is not nil the body is decoded into it.
func (c *Client) JSON(ctx context.Context, method, escapedPath string, query url.Values, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.NewRequest(ctx, method, escapedPath, query, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s %s: %w", method, escapedPath, err)
	}
	if len(raw) > maxAPIBody {
		return nil, fmt.Errorf("the answer of %s %s is larger than %d bytes", method, escapedPath, maxAPIBody)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("the answer of %s %s is not the JSON expected: %v", method, escapedPath, err)
		}
	}
	return raw, nil
}

// apiPath joins segments under /api/v1, escaping each.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String()
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// repoURLPath is the escaped path of a file or folder in a repository.
func repoURLPath(repo, path string) string {
	return "/repository/" + url.PathEscape(repo) + "/" + escapePath(path)
}
