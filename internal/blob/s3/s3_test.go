package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/blob/blobtest"
	"github.com/cofferhq/coffer/internal/blob/s3"
	"github.com/cofferhq/coffer/internal/blob/s3/s3test"
)

func newStore(t *testing.T, srv *s3test.Server, o s3.Options) *s3.Store {
	o.Endpoint, o.AccessKey, o.SecretKey, o.PathStyle = srv.Endpoint, srv.AccessKey, srv.SecretKey, true
	o.Bucket = srv.Bucket(t)
	s, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s := newStore(t, srv, s3.Options{PartSize: 5 << 20, Prefix: "coffer/"})
		t.Cleanup(func() {
			// Every case leaves no upload behind either.
			if n, err := s.PendingUploads(context.Background()); err != nil || n != 0 {
				t.Errorf("after the case: %d uploads in progress (%v)", n, err)
			}
		})
		return s
	})
}

// A chunked upload suspended through one Store and finished through
// another (two nodes sharing the bucket) gives the same blob.
func TestResumeOnAnotherNode(t *testing.T) {
	srv := s3test.Start(t)
	a := newStore(t, srv, s3.Options{PartSize: 5 << 20})
	b, err := s3.New(context.Background(), s3.Options{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, Bucket: a.Bucket(), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 12<<20+123)
	rand.Read(data)
	w, _ := a.Create(ctx)
	w.Write(data[:7<<20])
	state, err := w.(blob.Suspender).Suspend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b.Resume(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	w2.Write(data[7<<20:])
	info, err := w2.Commit(ctx, digest.FromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Open(ctx, info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("blob read through the first node differs")
	}
	if n, _ := a.PendingUploads(ctx); n != 0 {
		t.Fatalf("%d uploads left after the commit", n)
	}
	a.Delete(ctx, info.Digest)
}

func TestRedirectURL(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, s3.Options{RedirectTTL: time.Minute})
	ctx := context.Background()
	w, _ := s.Create(ctx)
	w.Write([]byte("presigned"))
	info, err := w.Commit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.RedirectURL(ctx, info.Digest)
	if err != nil || u == "" {
		t.Fatalf("RedirectURL = %q, %v", u, err)
	}
	resp, err := http.Get(u) // no credentials: the URL carries them
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "presigned" {
		t.Fatalf("GET presigned URL: %d %q", resp.StatusCode, body)
	}
	off := newStore(t, srv, s3.Options{})
	if u, err := off.RedirectURL(ctx, info.Digest); u != "" || err != nil {
		t.Fatalf("redirects off: RedirectURL = %q, %v", u, err)
	}
	s.Delete(ctx, info.Digest)
}

// Uploads nobody finished (a crash before the session row, a lost
// session) are removed once older than the cutoff; recent ones stay.
func TestRemoveStaleUploads(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, s3.Options{PartSize: 5 << 20})
	ctx := context.Background()
	big := make([]byte, 6<<20)
	w1, _ := s.Create(ctx)
	w1.Write(big) // one part in a multipart upload
	w1.(blob.Suspender).Suspend(ctx)
	w2, _ := s.Create(ctx)
	w2.Write([]byte("small"))
	w2.(blob.Suspender).Suspend(ctx)
	if n, _ := s.PendingUploads(ctx); n != 2 {
		t.Fatalf("PendingUploads = %d, want 2", n)
	}
	if n, _, err := s.RemoveStaleUploads(time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("recent uploads removed: %d, %v", n, err)
	}
	time.Sleep(1100 * time.Millisecond) // S3 times have a one-second resolution
	n, _, err := s.RemoveStaleUploads(time.Now())
	if err != nil || n < 2 {
		t.Fatalf("RemoveStaleUploads = %d, %v", n, err)
	}
	if n, _ := s.PendingUploads(ctx); n != 0 {
		t.Fatalf("PendingUploads after removal = %d", n)
	}
}
