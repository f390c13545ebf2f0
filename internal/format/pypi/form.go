package pypi

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
)

// The legacy upload API's form: metadata fields, then the file (form field
// "content"), in one multipart/form-data body. The file streams to the
// blob store; everything else is bounded.
const (
	maxFormFields    = 1000
	maxFormFieldData = 8 << 20 // bytes of all non-file fields together
	maxSignature     = 64 << 10
)

// uploadForm is the fields of an upload, read up to the file.
type uploadForm struct {
	fields map[string][]string
	// File is the "content" part, positioned at the file's first byte.
	File     io.Reader
	Filename string
	mr       *multipart.Reader
}

// Get returns a field's first value ("" when absent).
func (f *uploadForm) Get(name string) string {
	if vs := f.fields[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// boundary returns the multipart boundary of a Content-Type, or an error a
// person can act on.
func boundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", errs.New(errs.Invalid, "expected a multipart/form-data upload (the upload API twine speaks), got Content-Type %q", clip(contentType, 80))
	}
	return params["boundary"], nil
}

// readForm reads the fields of an upload up to its file part. The form is
// malformed if it ends before a file, repeats the file, or is not
// multipart; fields are bounded in number and size.
func readForm(body io.Reader, bnd string) (*uploadForm, error) {
	tb := &trackedBody{r: body}
	f := &uploadForm{fields: map[string][]string{}, mr: multipart.NewReader(tb, bnd)}
	budget := int64(maxFormFieldData)
	for n := 0; ; n++ {
		if n >= maxFormFields {
			return nil, errs.New(errs.Invalid, "the upload form has more than %d fields", maxFormFields)
		}
		p, err := f.mr.NextPart()
		if err == io.EOF {
			return nil, errs.New(errs.Invalid, "the upload form has no file (form field \"content\")")
		}
		if err != nil {
			return nil, malformed(err)
		}
		name := p.FormName()
		if name == "" {
			return nil, errs.New(errs.Invalid, "malformed upload form: a part has no form field name")
		}
		if name == "content" {
			fn := p.FileName()
			if fn == "" {
				return nil, errs.New(errs.Invalid, "malformed upload form: the \"content\" part has no file name")
			}
			f.File, f.Filename = &filePart{r: p, body: tb}, fn
			return f, nil
		}
		limit := budget
		if name == "gpg_signature" && limit > maxSignature {
			limit = maxSignature
		}
		b, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, malformed(err)
		}
		if int64(len(b)) > limit {
			return nil, errs.New(errs.TooLarge, "the upload form's fields exceed %d bytes", limit)
		}
		budget -= int64(len(b))
		f.fields[name] = append(f.fields[name], string(b))
	}
}

// finish reads what follows the file: only a signature may (twine --sign
// sends it last); anything else, or a body that does not end properly, is
// refused.
func (f *uploadForm) finish() error {
	for {
		p, err := f.mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return malformed(err)
		}
		switch p.FormName() {
		case "gpg_signature", "attestations":
			if _, err := io.Copy(io.Discard, io.LimitReader(p, maxSignature)); err != nil {
				return malformed(err)
			}
		case "content":
			return errs.New(errs.Invalid, "the upload form has two files; upload one file per request")
		default:
			return errs.New(errs.Invalid, "form field %q comes after the file; send the file last (as twine does)", clip(p.FormName(), 40))
		}
	}
}

func malformed(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(msg, "EOF") {
		msg = "the body ended before the closing boundary"
	}
	return errs.Wrap(errs.Invalid, err, "malformed upload form: %s; nothing was stored", msg)
}

// trackedBody remembers whether the request body ended cleanly.
type trackedBody struct {
	r   io.Reader
	eof bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

// filePart is the file's part: a part that ends without its boundary in a
// body that arrived whole is a malformed form, not an interrupted upload.
type filePart struct {
	r    io.Reader
	body *trackedBody
}

func (f *filePart) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.body.eof {
		err = errs.Wrap(errs.Invalid, err, "malformed upload form: the body ended before the file's closing boundary; nothing was stored")
	}
	return n, err
}
