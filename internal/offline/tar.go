package offline

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/groundzero/groundzero/internal/repo"
)

// Limits bound what a bundle may hold (T8): the number of entries, the size
// of the git bundle, the size of any other file, and the bytes the whole
// archive decompresses to.
type Limits struct {
	Entries  int
	GitSize  int64
	FileSize int64
	Total    int64
}

// DefaultLimits are the bounds Verify and Restore apply.
var DefaultLimits = Limits{Entries: 4096, GitSize: 2 << 30, FileSize: 1 << 20, Total: 2<<30 + 64<<20}

// UnsafeEntryError reports an archive entry that is refused before anything
// is written for it: a path that climbs out or is absolute, a link, a
// device, a duplicate, or a name a bundle never holds (T27).
type UnsafeEntryError struct {
	Name   string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("bundle entry %q: %s", truncate(e.Name), e.Reason)
}

// LimitError reports an entry, or the archive, over its size bound (T8).
type LimitError struct {
	Name  string
	Limit int64
	What  string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("bundle entry %q: %s exceeds the %d limit", truncate(e.Name), e.What, e.Limit)
}

// FormatError reports an archive that is not a gzip-compressed tar.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "not a groundzero bundle: " + e.Reason }

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// allowedName reports whether a bundle may hold name: the index and its
// signatures, the git bundle, and the governance files the index lists.
func allowedName(name string) bool {
	switch name {
	case IndexName, IndexName + ".asc", IndexName + ".sig", GitName:
		return true
	}
	for _, p := range loosePrefixes {
		if name == p || strings.HasPrefix(name, p) && strings.HasSuffix(p, "/") && !strings.Contains(name[len(p):], "/") {
			return true
		}
	}
	for _, f := range looseFiles {
		if name == f || name == f+".asc" || name == f+".sig" {
			return true
		}
	}
	return false
}

// extract reads a gzip-compressed tar from r into dir (which must exist
// and be empty), refusing every unsafe entry before writing it. It returns
// the names written, in archive order.
func extract(r io.Reader, dir string, lim Limits) ([]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, &FormatError{"not gzip-compressed"}
	}
	zr.Multistream(false)
	counted := &countingReader{r: zr, limit: lim.Total}
	tr := tar.NewReader(counted)
	seen := map[string]bool{}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if counted.over {
				return nil, &LimitError{Name: "(archive)", Limit: lim.Total, What: "the uncompressed size"}
			}
			return nil, &FormatError{"malformed tar: " + err.Error()}
		}
		if len(names) >= lim.Entries {
			return nil, &LimitError{Name: h.Name, Limit: int64(lim.Entries), What: "the number of entries"}
		}
		name := h.Name
		if err := checkEntry(h); err != nil {
			return nil, err
		}
		if seen[name] || seen[strings.ToLower(name)] {
			return nil, &UnsafeEntryError{name, "appears twice in the archive"}
		}
		seen[name], seen[strings.ToLower(name)] = true, true
		max := lim.FileSize
		if name == GitName {
			max = lim.GitSize
		}
		if h.Size > max {
			return nil, &LimitError{Name: name, Limit: max, What: fmt.Sprintf("its size %d", h.Size)}
		}
		if err := writeEntry(dir, name, tr, max); err != nil {
			if counted.over {
				return nil, &LimitError{Name: name, Limit: lim.Total, What: "the uncompressed size of the archive"}
			}
			return nil, err
		}
		names = append(names, name)
	}
	// Whatever follows the tar's end is refused too, so that two readers
	// cannot see two archives in one file.
	rest, err := io.ReadAll(io.LimitReader(counted, 1<<20))
	if err != nil && !counted.over {
		return nil, &FormatError{"malformed gzip stream after the archive"}
	}
	for _, b := range rest {
		if b != 0 {
			return nil, &FormatError{"data after the end of the archive"}
		}
	}
	if len(rest) == 1<<20 || counted.over {
		return nil, &FormatError{"data after the end of the archive"}
	}
	return names, nil
}

// checkEntry refuses an entry by its header alone.
func checkEntry(h *tar.Header) error {
	name := h.Name
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink:
		return &UnsafeEntryError{name, "is a symbolic link (to " + truncate(h.Linkname) + "); a bundle holds regular files only"}
	case tar.TypeLink:
		return &UnsafeEntryError{name, "is a hard link; a bundle holds regular files only"}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return &UnsafeEntryError{name, "is a device or FIFO; a bundle holds regular files only"}
	case tar.TypeDir:
		return &UnsafeEntryError{name, "is a directory entry; a bundle holds regular files only"}
	default:
		return &UnsafeEntryError{name, fmt.Sprintf("has entry type %q; a bundle holds regular files only", h.Typeflag)}
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return &UnsafeEntryError{name, "is an absolute path"}
	}
	if name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
		return &UnsafeEntryError{name, "climbs out of the bundle with .."}
	}
	if err := repo.CheckRel(name); err != nil {
		return &UnsafeEntryError{name, "is not a clean relative path"}
	}
	if !allowedName(name) {
		return &UnsafeEntryError{name, "is not a file a groundzero bundle holds"}
	}
	if h.Mode&^0o777 != 0 {
		return &UnsafeEntryError{name, "has special mode bits (setuid, setgid or sticky)"}
	}
	return nil
}

// writeEntry writes one regular file under dir, creating it exclusively
// and never through a link.
func writeEntry(dir, name string, r io.Reader, max int64) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if d := path.Dir(name); d != "." {
		cur := dir
		for _, part := range strings.Split(d, "/") {
			cur = filepath.Join(cur, part)
			fi, err := os.Lstat(cur)
			switch {
			case errors.Is(err, os.ErrNotExist):
				if err := os.Mkdir(cur, 0o700); err != nil {
					return err
				}
			case err != nil:
				return err
			case !fi.IsDir():
				return &UnsafeEntryError{name, "has a parent that is not a directory"}
			}
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return &UnsafeEntryError{name, "appears twice in the archive"}
		}
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n > max {
		return &LimitError{Name: name, Limit: max, What: "its content"}
	}
	return nil
}

// countingReader fails once more than limit bytes were read (a
// decompression bomb stops at the limit, not at the end of the stream).
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	over  bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		c.over = true
		return 0, errors.New("archive larger than the limit")
	}
	if rem := c.limit - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// writeArchive writes files (name and OS path, in order) as a
// gzip-compressed tar of regular files with fixed metadata, so that the
// same content makes the same bytes.
func writeArchive(w io.Writer, files []archived) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		fi, err := os.Lstat(f.src)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return &UnsafeEntryError{f.name, "is not a regular file"}
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: fi.Size(), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		in, err := os.Open(f.src)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

type archived struct {
	name string // name in the archive
	src  string // OS path of its content
}
