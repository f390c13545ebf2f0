package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/cofferhq/coffer/internal/blob"
	"github.com/cofferhq/coffer/internal/errs"
)

var (
	_ blob.Store      = (*Store)(nil)
	_ blob.Resumer    = (*Store)(nil)
	_ blob.Redirector = (*Store)(nil)
	_ blob.Suspender  = (*writer)(nil)
)

// Options configure a Store.
type Options struct {
	// Endpoint is host:port or an http(s) URL; http means no TLS.
	Endpoint  string
	Bucket    string
	Region    string
	Prefix    string
	AccessKey string
	SecretKey string
	PathStyle bool
	// PartSize is the multipart part size (default 16 MiB, at least 5 MiB).
	PartSize int64
	// RedirectTTL > 0 makes RedirectURL hand out presigned URLs valid that long.
	RedirectTTL time.Duration
	// CreateBucket creates a missing bucket.
	CreateBucket bool
	// Transport for the S3 client (nil: a default tuned for many parallel requests).
	Transport http.RoundTripper
}

const (
	minPartSize     = 5 << 20
	defaultPartSize = 16 << 20
	maxCopySize     = 5 << 30 // the largest single CopyObject
)

// Store keeps blobs in a bucket.
type Store struct {
	c      *minio.Client
	core   minio.Core
	bucket string
	prefix string
	part   int64
	ttl    time.Duration
}

// New connects to the bucket (creating it if asked) and returns the store.
func New(ctx context.Context, o Options) (*Store, error) {
	host, secure := o.Endpoint, false
	if strings.Contains(o.Endpoint, "://") {
		u, err := url.Parse(o.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("s3 endpoint %q: %w", o.Endpoint, err)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := o.Transport
	if tr == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, err
		}
		t.MaxIdleConnsPerHost = 256
		tr = t
	}
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:       secure,
		Region:       o.Region,
		BucketLookup: lookup,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", o.Endpoint, err)
	}
	s := &Store{c: c, core: minio.Core{Client: c}, bucket: o.Bucket, prefix: o.Prefix, part: o.PartSize, ttl: o.RedirectTTL}
	if s.part == 0 {
		s.part = defaultPartSize
	}
	if s.part < minPartSize {
		return nil, fmt.Errorf("s3 part size %d is below the S3 minimum of 5 MiB", s.part)
	}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 %s bucket %s: %w", o.Endpoint, o.Bucket, err)
	}
	if !ok {
		if !o.CreateBucket {
			return nil, fmt.Errorf("s3 %s: bucket %s does not exist (create it, or set create_bucket)", o.Endpoint, o.Bucket)
		}
		if err := c.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: o.Region}); err != nil {
			return nil, fmt.Errorf("s3 %s: creating bucket %s: %w", o.Endpoint, o.Bucket, err)
		}
	}
	return s, nil
}

// Client returns the underlying client (tests, tools).
func (s *Store) Client() *minio.Client { return s.c }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

func (s *Store) blobKey(d digest.Digest) string {
	h := d.Encoded()
	return s.prefix + "blobs/sha256/" + h[:2] + "/" + h
}

func (s *Store) uploadPrefix(id string) string { return s.prefix + "uploads/" + id + "/" }

func check(d digest.Digest) error {
	if !blob.ValidDigest(d) {
		return errs.New(errs.Invalid, "invalid blob digest %q", d)
	}
	return nil
}

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" || r.Code == "NoSuchUpload"
}

func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return errs.Wrap(errs.NotFound, err, "%s not found", what)
	}
	return fmt.Errorf("s3: %s: %w", what, err)
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := check(d); err != nil {
		return blob.Info{}, err
	}
	oi, err := s.c.StatObject(ctx, s.bucket, s.blobKey(d), minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, translate(err, "blob "+string(d))
	}
	return blob.Info{Digest: d, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Open implements blob.Store. The reader fetches ranges lazily (a Seek
// followed by a Read is one ranged GET).
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.blobKey(d), minio.GetObjectOptions{})
	if err != nil {
		return nil, translate(err, "blob "+string(d))
	}
	// Stat sends the GET (one round trip, not a HEAD and then a GET) and
	// reports a missing blob.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, translate(err, "blob "+string(d))
	}
	return object{obj}, nil
}

// object is a blob being read; ReadAt of the last bytes reports no error
// (minio-go says io.EOF, which io.ReaderAt allows but callers trip on).
type object struct{ *minio.Object }

func (o object) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.Object.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// RedirectURL implements blob.Redirector: a presigned GET URL, or "" when
// redirects are off.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest) (string, error) {
	if s.ttl <= 0 {
		return "", nil
	}
	if err := check(d); err != nil {
		return "", err
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.blobKey(d), s.ttl, nil)
	if err != nil {
		return "", translate(err, "blob "+string(d))
	}
	return u.String(), nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if _, err := s.Stat(ctx, d); err != nil {
		return err
	}
	return translate(s.c.RemoveObject(ctx, s.bucket, s.blobKey(d), minio.RemoveObjectOptions{}), "blob "+string(d))
}

// Walk implements blob.Store.
func (s *Store) Walk(ctx context.Context, fn func(blob.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := s.prefix + "blobs/sha256/"
	for oi := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("s3: listing blobs: %w", oi.Err)
		}
		rest := strings.TrimPrefix(oi.Key, base)
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, rest[i+1:])
		if check(d) != nil {
			continue
		}
		if err := fn(blob.Info{Digest: d, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// PendingUploads counts uploads in progress: multipart uploads and
// suspended writers' tails, by upload ID.
func (s *Store) PendingUploads(ctx context.Context) (int, error) {
	ids := map[string]bool{}
	base := s.prefix + "uploads/"
	for oi := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if oi.Err != nil {
			return 0, oi.Err
		}
		ids[strings.SplitN(strings.TrimPrefix(oi.Key, base), "/", 2)[0]] = true
	}
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, base, true) {
		if u.Err != nil {
			return 0, u.Err
		}
		ids[strings.SplitN(strings.TrimPrefix(u.Key, base), "/", 2)[0]] = true
	}
	return len(ids), nil
}

// RemoveStaleUploads aborts multipart uploads and deletes tail objects that
// nobody wrote to since cutoff: what a crash between a writer's start and
// its session row, or a lost session, leaves behind.
func (s *Store) RemoveStaleUploads(cutoff time.Time) (n int, bytes int64, err error) {
	ctx := context.Background()
	base := s.prefix + "uploads/"
	for oi := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if oi.Err != nil {
			return n, bytes, oi.Err
		}
		if oi.LastModified.Before(cutoff) {
			if err := s.c.RemoveObject(ctx, s.bucket, oi.Key, minio.RemoveObjectOptions{}); err == nil {
				n, bytes = n+1, bytes+oi.Size
			}
		}
	}
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, base, true) {
		if u.Err != nil {
			return n, bytes, u.Err
		}
		if !u.Initiated.Before(cutoff) {
			continue
		}
		// A long session may have started long ago: only its last part's
		// time says whether it is abandoned.
		parts, err := s.core.ListObjectParts(ctx, s.bucket, u.Key, u.UploadID, 0, 10000)
		if err != nil {
			continue
		}
		last, size := u.Initiated, int64(0)
		for _, p := range parts.ObjectParts {
			if p.LastModified.After(last) {
				last = p.LastModified
			}
			size += p.Size
		}
		if last.Before(cutoff) {
			if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err == nil {
				n, bytes = n+1, bytes+size
			}
		}
	}
	return n, bytes, nil
}

// Create implements blob.Store.
func (s *Store) Create(context.Context) (blob.Writer, error) {
	return &writer{s: s, id: newID(), h: sha256.New()}, nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type part struct {
	N    int    `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// writer buffers up to a part and streams parts to a multipart upload,
// one part in flight while the next one fills.
type writer struct {
	s        *Store
	id       string
	uploadID string
	parts    []part
	buf      []byte
	spare    []byte     // the other buffer, back from the part in flight
	inflight chan error // the part being uploaded, nil when none
	h        hash.Hash
	size     int64
	// resumable: Suspend or Resume happened, so tails may exist.
	resumable bool
	done      bool // committed, cancelled or suspended
	err       error
}

func (w *writer) dataKey() string { return w.s.uploadPrefix(w.id) + "data" }

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("s3: write to a finished blob writer")
	}
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	w.h.Write(p)
	w.size += int64(n)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, w.s.part)
		}
		k := min(len(p), int(w.s.part)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if int64(len(w.buf)) == w.s.part {
			if err := w.startPart(context.Background()); err != nil {
				w.err = err
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// startPart uploads the full buffer as the next part in the background,
// after the previous part finished; writing continues into the other buffer.
func (w *writer) startPart(ctx context.Context) error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.uploadID == "" {
		id, err := w.s.core.NewMultipartUpload(ctx, w.s.bucket, w.dataKey(), minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("s3: starting a multipart upload: %w", err)
		}
		w.uploadID = id
	}
	buf := w.buf
	n := len(w.parts) + 1
	w.parts = append(w.parts, part{N: n, Size: int64(len(buf))})
	done := make(chan error, 1)
	w.inflight = done
	go func() {
		p, err := w.s.core.PutObjectPart(ctx, w.s.bucket, w.dataKey(), w.uploadID, n, bytes.NewReader(buf), int64(len(buf)),
			minio.PutObjectPartOptions{DisableContentSha256: true})
		if err == nil {
			w.parts[n-1].ETag = p.ETag
		}
		done <- translate(err, "upload part")
	}()
	w.buf, w.spare = w.spare[:0], buf
	if w.buf == nil {
		w.buf = make([]byte, 0, w.s.part)
	}
	return nil
}

// wait waits for the part in flight.
func (w *writer) wait() error {
	if w.inflight == nil {
		return nil
	}
	err := <-w.inflight
	w.inflight = nil
	if err != nil {
		w.err = err
	}
	return err
}

// flushPart uploads the buffer as the next part and waits for it.
func (w *writer) flushPart(ctx context.Context) error {
	if err := w.startPart(ctx); err != nil {
		return err
	}
	return w.wait()
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Commit implements blob.Writer.
func (w *writer) Commit(ctx context.Context, expected digest.Digest) (blob.Info, error) {
	if w.done {
		return blob.Info{}, errors.New("s3: commit of a finished blob writer")
	}
	w.wait()
	if w.err != nil {
		w.Cancel(ctx)
		return blob.Info{}, w.err
	}
	d := w.Digest()
	if expected != "" && expected != d {
		w.Cancel(ctx)
		return blob.Info{}, errs.New(errs.DigestMismatch, "content has digest %s, not %s", d, expected)
	}
	key := w.s.blobKey(d)
	if w.uploadID == "" {
		_, err := w.s.c.PutObject(ctx, w.s.bucket, key, bytes.NewReader(w.buf), int64(len(w.buf)),
			minio.PutObjectOptions{DisableContentSha256: true, DisableMultipart: true, ContentType: "application/octet-stream"})
		if err != nil {
			return blob.Info{}, translate(err, "blob "+string(d))
		}
	} else {
		if len(w.buf) > 0 {
			if err := w.flushPart(ctx); err != nil {
				return blob.Info{}, err
			}
		}
		cp := make([]minio.CompletePart, len(w.parts))
		for i, p := range w.parts {
			cp[i] = minio.CompletePart{PartNumber: p.N, ETag: p.ETag}
		}
		if _, err := w.s.core.CompleteMultipartUpload(ctx, w.s.bucket, w.dataKey(), w.uploadID, cp, minio.PutObjectOptions{}); err != nil {
			return blob.Info{}, translate(err, "completing the upload of "+string(d))
		}
		w.uploadID = ""
		if err := w.s.copyIn(ctx, w.dataKey(), key, w.size); err != nil {
			return blob.Info{}, err
		}
	}
	w.done = true
	w.buf, w.spare = nil, nil
	w.cleanup(context.WithoutCancel(ctx))
	return blob.Info{Digest: d, Size: w.size, ModTime: time.Now()}, nil
}

// copyIn copies a completed upload to its final key, unless the blob is
// already there (content-addressed: same key, same bytes).
func (s *Store) copyIn(ctx context.Context, src, dst string, size int64) error {
	if _, err := s.c.StatObject(ctx, s.bucket, dst, minio.StatObjectOptions{}); err == nil {
		return nil
	}
	from := minio.CopySrcOptions{Bucket: s.bucket, Object: src}
	to := minio.CopyDestOptions{Bucket: s.bucket, Object: dst}
	var err error
	if size <= maxCopySize {
		_, err = s.c.CopyObject(ctx, to, from)
	} else {
		_, err = s.c.ComposeObject(ctx, to, from)
	}
	return translate(err, "copying "+src+" to "+dst)
}

// cleanup removes the upload's temporary objects.
func (w *writer) cleanup(ctx context.Context) {
	if w.uploadID != "" {
		w.s.core.AbortMultipartUpload(ctx, w.s.bucket, w.dataKey(), w.uploadID)
		w.uploadID = ""
	}
	if len(w.parts) == 0 && !w.resumable {
		return
	}
	if !w.resumable {
		w.s.c.RemoveObject(ctx, w.s.bucket, w.dataKey(), minio.RemoveObjectOptions{})
		return
	}
	for oi := range w.s.c.ListObjects(ctx, w.s.bucket, minio.ListObjectsOptions{Prefix: w.s.uploadPrefix(w.id), Recursive: true}) {
		if oi.Err == nil {
			w.s.c.RemoveObject(ctx, w.s.bucket, oi.Key, minio.RemoveObjectOptions{})
		}
	}
}

// Cancel implements blob.Writer.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.wait()
	w.done = true
	w.buf, w.spare = nil, nil
	w.cleanup(context.WithoutCancel(ctx))
	return nil
}

type suspendState struct {
	ID     string `json:"id"`
	Upload string `json:"upload,omitempty"`
	Parts  []part `json:"parts,omitempty"`
	Tail   string `json:"tail"`
	Size   int64  `json:"size"`
	Hash   []byte `json:"hash"`
}

var (
	idPattern   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	tailPattern = regexp.MustCompile(`^tail-[0-9a-f]{32}$`)
)

// Suspend implements blob.Suspender: the bytes not yet in a part go to a
// new tail object.
func (w *writer) Suspend(ctx context.Context) ([]byte, error) {
	if w.done {
		return nil, errors.New("s3: suspend of a finished blob writer")
	}
	w.done = true
	if w.wait(); w.err != nil {
		return nil, w.err
	}
	hs, err := w.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	tail := "tail-" + newID()
	if _, err := w.s.c.PutObject(ctx, w.s.bucket, w.s.uploadPrefix(w.id)+tail, bytes.NewReader(w.buf), int64(len(w.buf)),
		minio.PutObjectOptions{DisableContentSha256: true, DisableMultipart: true}); err != nil {
		return nil, translate(err, "upload tail")
	}
	w.buf = nil
	return json.Marshal(suspendState{ID: w.id, Upload: w.uploadID, Parts: w.parts, Tail: tail, Size: w.size, Hash: hs})
}

// Resume implements blob.Resumer.
func (s *Store) Resume(ctx context.Context, state []byte) (blob.Writer, error) {
	var st suspendState
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "bad upload state")
	}
	if !idPattern.MatchString(st.ID) || !tailPattern.MatchString(st.Tail) || st.Size < 0 {
		return nil, errs.New(errs.Invalid, "bad upload state")
	}
	var inParts int64
	for i, p := range st.Parts {
		if p.N != i+1 || p.Size != s.part {
			return nil, errs.New(errs.Invalid, "bad upload state (parts)")
		}
		inParts += p.Size
	}
	if (len(st.Parts) > 0) != (st.Upload != "") || st.Size-inParts >= s.part || st.Size < inParts {
		return nil, errs.New(errs.Invalid, "bad upload state (sizes)")
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "bad upload state (hash)")
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.uploadPrefix(st.ID)+st.Tail, minio.GetObjectOptions{})
	if err != nil {
		return nil, translate(err, "upload")
	}
	defer obj.Close()
	buf := make([]byte, 0, s.part)
	buf, err = readAllInto(buf, obj, s.part)
	if err != nil {
		return nil, translate(err, "upload "+st.ID)
	}
	if int64(len(buf)) != st.Size-inParts {
		return nil, errs.New(errs.Invalid, "upload %s: its tail holds %d bytes, the state says %d", st.ID, len(buf), st.Size-inParts)
	}
	return &writer{s: s, id: st.ID, uploadID: st.Upload, parts: st.Parts, buf: buf, h: h, size: st.Size, resumable: true}, nil
}

func readAllInto(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, errors.New("tail larger than a part")
}
