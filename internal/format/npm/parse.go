package npm

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cofferhq/coffer/internal/errs"
)

// A publish document (PUT /<name>) is JSON: the package's metadata and, for
// a publish, "_attachments" holding the tarball in base64. The tarball can
// be large, so the document is parsed as a stream: every member except
// "_attachments" is captured raw (bounded by maxMeta), and each attachment's
// "data" string is base64-decoded on the fly into a writer that the caller
// chooses when it starts (the repository's upload stream). Nothing about
// the document is trusted until the whole of it parsed.

const (
	// maxMeta bounds the document without its attachment data: manifests,
	// readme and the rest.
	maxMeta = 16 << 20
	// maxDepth bounds nesting in captured values.
	maxDepth = 256
)

// document is a parsed publish or metadata-update document.
type document struct {
	// Fields are the top-level members except _attachments, raw.
	Fields map[string]json.RawMessage
	// Attachments are the "_attachments" members, in order.
	Attachments []*attachment
}

// attachment describes one member of "_attachments".
type attachment struct {
	Name        string
	ContentType string
	Length      int64 // declared "length", -1 when absent
	Size        int64 // decoded bytes of "data", -1 when absent
}

// sinkFunc is called when an attachment's data starts, with the document
// parsed so far. It returns where the decoded bytes go (nil: discard).
type sinkFunc func(doc *document, name string) (io.Writer, error)

func malformed(format string, args ...any) error {
	return errs.New(errs.Invalid, "malformed publish document: "+format, args...)
}

type parser struct {
	r    *bufio.Reader
	meta int64 // metadata budget left
	doc  *document
	sink sinkFunc
}

// parseDocument parses a document from r. A read error of r is returned
// as is (wrapped), syntax errors as errs.Invalid, an oversized document as
// errs.TooLarge.
func parseDocument(r io.Reader, sink sinkFunc) (*document, error) {
	p := &parser{r: bufio.NewReaderSize(r, 64<<10), meta: maxMeta,
		doc: &document{Fields: map[string]json.RawMessage{}}, sink: sink}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.doc, nil
}

func (p *parser) readByte() (byte, error) {
	c, err := p.r.ReadByte()
	if err == io.EOF {
		return 0, malformed("it ends before the JSON is complete")
	}
	return c, err
}

func (p *parser) skipWS() (byte, error) {
	for {
		c, err := p.readByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func (p *parser) charge(n int) error {
	p.meta -= int64(n)
	if p.meta < 0 {
		return errs.New(errs.TooLarge, "publish document metadata exceeds %d bytes (without the tarball)", maxMeta)
	}
	return nil
}

func (p *parser) parse() error {
	c, err := p.skipWS()
	if err != nil {
		return err
	}
	if c != '{' {
		return malformed("it is not a JSON object")
	}
	err = p.members(func(key string) error {
		if key == "_attachments" {
			return p.attachments()
		}
		if _, dup := p.doc.Fields[key]; dup {
			return malformed("member %q appears twice", key)
		}
		raw, err := p.rawValue()
		if err != nil {
			return err
		}
		p.doc.Fields[key] = raw
		return nil
	})
	if err != nil {
		return err
	}
	for {
		c, err := p.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return malformed("unexpected data after the JSON object")
		}
	}
}

// members parses the members of an object whose '{' was read, calling fn
// with each key; fn parses the value.
func (p *parser) members(fn func(key string) error) error {
	c, err := p.skipWS()
	if err != nil {
		return err
	}
	if c == '}' {
		return nil
	}
	for {
		if c != '"' {
			return malformed("expected a member name")
		}
		key, err := p.stringValue()
		if err != nil {
			return err
		}
		if c, err = p.skipWS(); err != nil {
			return err
		}
		if c != ':' {
			return malformed("expected ':' after %q", key)
		}
		if err := fn(key); err != nil {
			return err
		}
		if c, err = p.skipWS(); err != nil {
			return err
		}
		switch c {
		case '}':
			return nil
		case ',':
			if c, err = p.skipWS(); err != nil {
				return err
			}
		default:
			return malformed("expected ',' or '}' after the value of %q", key)
		}
	}
}

// stringValue reads a string whose opening quote was read, charged to the
// metadata budget.
func (p *parser) stringValue() (string, error) {
	var b bytes.Buffer
	sr := &stringReader{p: p}
	buf := make([]byte, 4096)
	for {
		n, err := sr.Read(buf)
		b.Write(buf[:n])
		if err := p.charge(n); err != nil {
			return "", err
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if !utf8.Valid(b.Bytes()) {
		return "", malformed("a string is not valid UTF-8")
	}
	return b.String(), nil
}

// rawValue captures the next value's bytes (after whitespace) and checks
// they are valid JSON.
func (p *parser) rawValue() (json.RawMessage, error) {
	var b bytes.Buffer
	c, err := p.skipWS()
	if err != nil {
		return nil, err
	}
	if err := p.copyValue(&b, c, 0); err != nil {
		return nil, err
	}
	if !json.Valid(b.Bytes()) {
		return nil, malformed("a value is not valid JSON")
	}
	return b.Bytes(), nil
}

// copyValue copies a value starting with c into b. Structure is tracked
// just enough to find the value's end; json.Valid checks the rest.
func (p *parser) copyValue(b *bytes.Buffer, c byte, depth int) error {
	if err := p.charge(1); err != nil {
		return err
	}
	b.WriteByte(c)
	switch {
	case c == '"':
		return p.copyString(b)
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return malformed("nesting deeper than %d", maxDepth)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		c, err := p.skipWS()
		if err != nil {
			return err
		}
		if c == closer {
			b.WriteByte(c)
			return p.charge(1)
		}
		for {
			if err := p.copyValue(b, c, depth+1); err != nil {
				return err
			}
			if c, err = p.skipWS(); err != nil {
				return err
			}
			if err := p.charge(1); err != nil {
				return err
			}
			b.WriteByte(c)
			switch c {
			case closer:
				return nil
			case ',', ':':
				if c, err = p.skipWS(); err != nil {
					return err
				}
			default:
				return malformed("unexpected %q", c)
			}
		}
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
		for {
			c, err := p.r.ReadByte()
			if err == io.EOF {
				return nil // json.Valid or the caller decides
			}
			if err != nil {
				return err
			}
			if c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				return p.r.UnreadByte()
			}
			if err := p.charge(1); err != nil {
				return err
			}
			b.WriteByte(c)
		}
	}
	return malformed("unexpected %q", c)
}

// copyString copies a string's bytes after its opening quote, closing quote
// included, escapes untouched.
func (p *parser) copyString(b *bytes.Buffer) error {
	for {
		chunk, err := p.r.ReadSlice('"')
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				return malformed("a string is not terminated")
			}
			return err
		}
		if err := p.charge(len(chunk)); err != nil {
			return err
		}
		b.Write(chunk)
		if err == bufio.ErrBufferFull {
			continue
		}
		// The quote ends the string unless an odd number of backslashes
		// precedes it.
		n := 0
		for i := b.Len() - 2; i >= 0 && b.Bytes()[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			return nil
		}
	}
}

func (p *parser) attachments() error {
	c, err := p.skipWS()
	if err != nil {
		return err
	}
	if c == 'n' { // "_attachments": null
		raw, err := p.rest(c)
		if err != nil || string(raw) != "null" {
			return malformed("_attachments must be an object")
		}
		return nil
	}
	if c != '{' {
		return malformed("_attachments must be an object")
	}
	return p.members(func(name string) error {
		if len(p.doc.Attachments) >= 16 {
			return malformed("too many attachments")
		}
		a := &attachment{Name: name, Length: -1, Size: -1}
		p.doc.Attachments = append(p.doc.Attachments, a)
		c, err := p.skipWS()
		if err != nil {
			return err
		}
		if c != '{' {
			return malformed("attachment %q must be an object", name)
		}
		return p.members(func(key string) error {
			switch key {
			case "data":
				if a.Size >= 0 {
					return malformed("attachment %q has two data members", name)
				}
				return p.data(a)
			case "content_type":
				raw, err := p.rawValue()
				if err != nil {
					return err
				}
				if json.Unmarshal(raw, &a.ContentType) != nil {
					return malformed("content_type of %q must be a string", name)
				}
			case "length":
				raw, err := p.rawValue()
				if err != nil {
					return err
				}
				n, err := strconv.ParseInt(string(raw), 10, 64)
				if err != nil || n < 0 {
					return malformed("length of %q must be a non-negative integer", name)
				}
				a.Length = n
			default:
				if _, err := p.rawValue(); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// rest reads a literal starting with c.
func (p *parser) rest(c byte) ([]byte, error) {
	var b bytes.Buffer
	if err := p.copyValue(&b, c, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// data streams a base64 "data" string into the sink's writer.
func (p *parser) data(a *attachment) error {
	c, err := p.skipWS()
	if err != nil {
		return err
	}
	if c != '"' {
		return malformed("data of attachment %q must be a base64 string", a.Name)
	}
	w, err := p.sink(p.doc, a.Name)
	if err != nil {
		return err
	}
	if w == nil {
		w = io.Discard
	}
	sr := &stringReader{p: p}
	cw := &countWriter{w: w}
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(cw, base64.NewDecoder(base64.StdEncoding, sr), buf); err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return malformed("data of attachment %q is not valid base64", a.Name)
		}
		return err
	}
	// The decoder stops at the padding; anything after it is an error.
	if n, err := io.Copy(io.Discard, sr); err != nil {
		return err
	} else if n > 0 {
		return malformed("data of attachment %q has bytes after the base64 padding", a.Name)
	}
	a.Size = cw.n
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// stringReader yields the decoded bytes of a JSON string whose opening
// quote was read, and io.EOF after its closing quote.
type stringReader struct {
	p    *parser
	done bool
	pend []byte
}

func (s *stringReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && !s.done {
		if len(s.pend) > 0 {
			k := copy(b[n:], s.pend)
			s.pend = s.pend[k:]
			n += k
			continue
		}
		r := s.p.r
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				if err == io.EOF {
					return n, malformed("a string is not terminated")
				}
				return n, err
			}
		}
		chunk, _ := r.Peek(r.Buffered())
		i := 0
		for i < len(chunk) && n+i < len(b) {
			c := chunk[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			i++
		}
		copy(b[n:], chunk[:i])
		n += i
		r.Discard(i)
		if i < len(chunk) && n < len(b) {
			switch c := chunk[i]; {
			case c == '"':
				r.Discard(1)
				s.done = true
			case c < 0x20:
				return n, malformed("control character in a string")
			default: // backslash
				r.Discard(1)
				dec, err := s.escape()
				if err != nil {
					return n, err
				}
				s.pend = dec
			}
		}
	}
	if n == 0 && s.done {
		return 0, io.EOF
	}
	return n, nil
}

// escape decodes the escape sequence after a backslash.
func (s *stringReader) escape() ([]byte, error) {
	c, err := s.p.readByte()
	if err != nil {
		return nil, err
	}
	switch c {
	case '"', '\\', '/':
		return []byte{c}, nil
	case 'b':
		return []byte{'\b'}, nil
	case 'f':
		return []byte{'\f'}, nil
	case 'n':
		return []byte{'\n'}, nil
	case 'r':
		return []byte{'\r'}, nil
	case 't':
		return []byte{'\t'}, nil
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(r) {
			// A surrogate pair is two escapes; a lone one is replaced, as
			// encoding/json does.
			if b, _ := s.p.r.Peek(2); len(b) == 2 && b[0] == '\\' && b[1] == 'u' {
				s.p.r.Discard(2)
				r2, err := s.hex4()
				if err != nil {
					return nil, err
				}
				r = utf16.DecodeRune(r, r2)
			} else {
				r = utf8.RuneError
			}
		}
		return utf8.AppendRune(nil, r), nil
	}
	return nil, malformed("invalid escape \\%c in a string", c)
}

func (s *stringReader) hex4() (rune, error) {
	var r rune
	for i := 0; i < 4; i++ {
		c, err := s.p.readByte()
		if err != nil {
			return 0, err
		}
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, malformed("invalid \\u escape in a string")
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}
