package pypi

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/cofferhq/coffer/internal/errs"
)

// Archives are untrusted input. They are read in place (random access for
// zips, one streaming pass for tarballs), never extracted; every member
// name is checked against traversal, and sizes and counts are bounded so
// that a crafted archive (a zip bomb, a directory of millions of entries)
// costs bounded memory and time.
const (
	maxArchiveEntries = 100_000
	maxZipDirectory   = 32 << 20 // bytes of a zip's central directory
)

// maxSdistExpanded is how many bytes a tarball may expand to (a variable
// for tests).
var maxSdistExpanded int64 = 1 << 30

// archiveMetadata is the core metadata found in a distribution.
type archiveMetadata struct {
	Raw  []byte // the file as stored in the archive
	Meta *coreMetadata
	Path string // its member name
}

// readArchiveMetadata finds, reads and parses the core metadata of a
// distribution: the wheel's .dist-info/METADATA, or the sdist's top-level
// PKG-INFO.
func readArchiveMetadata(r io.ReaderAt, size int64, d *dist) (*archiveMetadata, error) {
	var (
		raw    []byte
		member string
		err    error
	)
	switch {
	case d.Kind == kindWheel:
		raw, member, err = zipMetadata(r, size, true)
	case d.Ext == ".zip":
		raw, member, err = zipMetadata(r, size, false)
	default:
		raw, member, err = tarMetadata(io.NewSectionReader(r, 0, size))
	}
	if err != nil {
		return nil, err
	}
	m, err := parseCoreMetadata(raw)
	if err != nil {
		return nil, errs.New(errs.Invalid, "%s in %s: %s", member, d.Filename, errs.Message(err))
	}
	return &archiveMetadata{Raw: raw, Meta: m, Path: member}, nil
}

// checkMember refuses member names that would escape the directory an
// archive is unpacked into, or that no tool can agree on.
func checkMember(name string) error {
	switch {
	case name == "":
		return errs.New(errs.Invalid, "archive has a member with an empty name")
	case strings.HasPrefix(name, "/"), strings.Contains(name, "\\"), len(name) >= 2 && name[1] == ':':
		return errs.New(errs.Invalid, "archive member %q has an absolute or Windows path; refused", clip(name, 100))
	case strings.ContainsRune(name, 0) || !isPrintable(name):
		return errs.New(errs.Invalid, "archive member %q has control characters in its name; refused", clip(name, 100))
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return errs.New(errs.Invalid, "archive member %q has a traversal path (..); refused", clip(name, 100))
		}
	}
	return nil
}

func isPrintable(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// cleanMember drops a leading "./" (tar ./dir) and a trailing "/".
func cleanMember(name string) string {
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	return strings.TrimSuffix(name, "/")
}

// zipMetadata reads a zip's core metadata: for a wheel the one
// <name>-<version>.dist-info/METADATA, otherwise <top>/PKG-INFO.
func zipMetadata(r io.ReaderAt, size int64, wheel bool) ([]byte, string, error) {
	if err := checkZipDirectory(r, size); err != nil {
		return nil, "", err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, "", errs.Wrap(errs.Invalid, err, "not a valid zip archive: %v", err)
	}
	if len(zr.File) > maxArchiveEntries {
		return nil, "", errs.New(errs.Invalid, "archive has more than %d members", maxArchiveEntries)
	}
	var found *zip.File
	tops := map[string]bool{}
	for _, f := range zr.File {
		if err := checkMember(f.Name); err != nil {
			return nil, "", err
		}
		name := cleanMember(f.Name)
		top, rest, _ := strings.Cut(name, "/")
		if !wheel {
			tops[top] = true
		}
		want := rest == "PKG-INFO"
		if wheel {
			want = strings.HasSuffix(top, ".dist-info") && rest == "METADATA"
		}
		if want {
			if found != nil {
				return nil, "", errs.New(errs.Invalid, "archive has two core metadata files (%s and %s)", found.Name, f.Name)
			}
			found = f
		}
	}
	if !wheel && len(tops) != 1 {
		return nil, "", errs.New(errs.Invalid, "an sdist must hold one top-level directory ({name}-{version}/), this one has %d", len(tops))
	}
	if found == nil {
		if wheel {
			return nil, "", errs.New(errs.Invalid, "wheel has no {name}-{version}.dist-info/METADATA")
		}
		return nil, "", errs.New(errs.Invalid, "sdist has no {name}-{version}/PKG-INFO")
	}
	if found.UncompressedSize64 > maxMetadataSize {
		return nil, "", errs.New(errs.Invalid, "%s is larger than %d bytes", found.Name, maxMetadataSize)
	}
	rc, err := found.Open()
	if err != nil {
		return nil, "", errs.Wrap(errs.Invalid, err, "reading %s: %v", found.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetadataSize+1))
	if err != nil {
		return nil, "", errs.Wrap(errs.Invalid, err, "reading %s: %v", found.Name, err)
	}
	if len(b) > maxMetadataSize {
		return nil, "", errs.New(errs.Invalid, "%s is larger than %d bytes", found.Name, maxMetadataSize)
	}
	return b, found.Name, nil
}

// checkZipDirectory reads the end-of-central-directory record (zip64 too)
// and refuses directories too large to read into memory.
func checkZipDirectory(r io.ReaderAt, size int64) error {
	const eocdLen, maxComment = 22, 65535
	if size < eocdLen {
		return errs.New(errs.Invalid, "not a valid zip archive: %d bytes is too short", size)
	}
	n := int64(eocdLen + maxComment)
	if n > size {
		n = size
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return err
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < eocdLen {
		return errs.New(errs.Invalid, "not a valid zip archive: no end of central directory")
	}
	e := buf[i:]
	entries := uint64(binary.LittleEndian.Uint16(e[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(e[12:]))
	if entries == 0xffff || dirSize == 0xffffffff {
		// zip64: the locator sits just before the record.
		loc := int64(i) + size - n - 20
		if loc >= 0 {
			l := make([]byte, 20)
			if _, err := r.ReadAt(l, loc); err == nil && string(l[:4]) == "PK\x06\x07" {
				off := int64(binary.LittleEndian.Uint64(l[8:]))
				z := make([]byte, 56)
				if off >= 0 && off+56 <= size {
					if _, err := r.ReadAt(z, off); err == nil && string(z[:4]) == "PK\x06\x06" {
						entries = binary.LittleEndian.Uint64(z[32:])
						dirSize = binary.LittleEndian.Uint64(z[40:])
					}
				}
			}
		}
	}
	if entries > maxArchiveEntries {
		return errs.New(errs.Invalid, "archive has %d members, more than the %d accepted", entries, maxArchiveEntries)
	}
	if dirSize > maxZipDirectory {
		return errs.New(errs.Invalid, "archive directory is %d bytes, more than the %d accepted", dirSize, maxZipDirectory)
	}
	return nil
}

// tarMetadata reads a gzip-compressed tarball in one pass: it checks every
// member (names, link targets, types) and keeps <top>/PKG-INFO.
func tarMetadata(r io.Reader) ([]byte, string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, "", errs.Wrap(errs.Invalid, err, "not a valid .tar.gz: %v", err)
	}
	defer gz.Close()
	budget := &boundedReader{r: gz, left: maxSdistExpanded}
	tr := tar.NewReader(budget)
	var (
		raw    []byte
		member string
		top    string
	)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errBomb) {
				return nil, "", errs.New(errs.Invalid, "sdist expands to more than %d bytes; refused", maxSdistExpanded)
			}
			return nil, "", errs.Wrap(errs.Invalid, err, "not a valid .tar.gz: %v", err)
		}
		if n >= maxArchiveEntries {
			return nil, "", errs.New(errs.Invalid, "archive has more than %d members", maxArchiveEntries)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
		default:
			return nil, "", errs.New(errs.Invalid, "archive member %q is a %s, not a file, directory or link; refused", clip(h.Name, 100), typeName(h.Typeflag))
		}
		if err := checkMember(h.Name); err != nil {
			return nil, "", err
		}
		name := cleanMember(h.Name)
		if name == "" || name == "." {
			continue // the archive's root itself ("./")
		}
		t, rest, _ := strings.Cut(name, "/")
		if top == "" {
			top = t
		} else if t != top {
			return nil, "", errs.New(errs.Invalid, "an sdist must hold one top-level directory ({name}-{version}/), this one has %s/ and %s/", top, t)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			if err := checkLink(name, h.Linkname, true); err != nil {
				return nil, "", err
			}
		case tar.TypeLink:
			if err := checkLink(name, h.Linkname, false); err != nil {
				return nil, "", err
			}
		}
		if rest == "PKG-INFO" && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA) {
			if raw != nil {
				return nil, "", errs.New(errs.Invalid, "archive has two %s members", name)
			}
			if h.Size > maxMetadataSize {
				return nil, "", errs.New(errs.Invalid, "%s is larger than %d bytes", name, maxMetadataSize)
			}
			b, err := io.ReadAll(io.LimitReader(tr, maxMetadataSize+1))
			if err != nil {
				return nil, "", errs.Wrap(errs.Invalid, err, "reading %s: %v", name, err)
			}
			raw, member = b, h.Name
		}
	}
	if raw == nil {
		return nil, "", errs.New(errs.Invalid, "sdist has no {name}-{version}/PKG-INFO")
	}
	return raw, member, nil
}

// checkLink refuses links that point outside the archive: symlink targets
// are relative to the link's directory, hard link targets to the root.
func checkLink(name, target string, symlink bool) error {
	bad := target == "" || strings.HasPrefix(target, "/") || strings.Contains(target, "\\") || strings.ContainsRune(target, 0)
	if !bad {
		p := target
		if symlink {
			p = path.Join(path.Dir(name), target)
		}
		p = path.Clean(p)
		bad = p == ".." || strings.HasPrefix(p, "../")
	}
	if bad {
		return errs.New(errs.Invalid, "archive member %q links to %q, outside the archive; refused", clip(name, 100), clip(target, 100))
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("member of type %q", t)
}

var errBomb = errors.New("expansion limit reached")

// boundedReader fails once more than left bytes were read.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errBomb
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
