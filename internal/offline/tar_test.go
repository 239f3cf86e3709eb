package offline

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, data string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}, []byte(data)}
}

func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractAccepts(t *testing.T) {
	dir := t.TempDir()
	names, err := extract(bytes.NewReader(archive(t,
		reg(IndexName, "{}\n"), reg(IndexName+".asc", "sig"), reg(GitName, "git"),
		reg("governance/MANIFEST", "m"), reg("governance/keys/a.asc", "k"), reg("governance/signers.d/1.yaml", "v1"),
	)), dir, DefaultLimits)
	if err != nil {
		t.Fatalf("extract = %v, want nil", err)
	}
	if len(names) != 6 {
		t.Fatalf("extract names = %v, want 6", names)
	}
	data, err := os.ReadFile(filepath.Join(dir, "governance/keys/a.asc"))
	if err != nil || string(data) != "k" {
		t.Fatalf("governance/keys/a.asc = %q, %v, want k", data, err)
	}
}

func TestExtractRefuses(t *testing.T) {
	special := func(name string, typ byte, link string) entry {
		return entry{tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644}, nil}
	}
	setuid := reg("governance/keys/s.asc", "x")
	setuid.hdr.Mode = 0o4755
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dotdot", []entry{reg("../x", "x")}, "climbs out"},
		{"dotdot-inner", []entry{reg("governance/../../x", "x")}, "climbs out"},
		{"absolute", []entry{reg("/etc/x", "x")}, "absolute path"},
		{"unclean", []entry{reg("governance//MANIFEST", "x")}, "not a clean relative path"},
		{"dot-prefix", []entry{reg("./governance/MANIFEST", "x")}, "not a clean relative path"},
		{"symlink", []entry{special("governance/keys/l.asc", tar.TypeSymlink, "/etc/passwd")}, "symbolic link"},
		{"hardlink", []entry{special("governance/keys/h.asc", tar.TypeLink, "governance/MANIFEST")}, "hard link"},
		{"chardev", []entry{special("governance/keys/c.asc", tar.TypeChar, "")}, "device"},
		{"blockdev", []entry{special("governance/keys/b.asc", tar.TypeBlock, "")}, "device"},
		{"fifo", []entry{special("governance/keys/f.asc", tar.TypeFifo, "")}, "FIFO"},
		{"dir", []entry{special("governance/", tar.TypeDir, "")}, "directory entry"},
		{"duplicate", []entry{reg("governance/MANIFEST", "a"), reg("governance/MANIFEST", "b")}, "appears twice"},
		{"case-duplicate", []entry{reg("governance/keys/A.asc", "a"), reg("governance/keys/a.asc", "b")}, "appears twice"},
		{"unknown", []entry{reg("infra/bootstrap/main.tf", "x")}, "not a file a groundzero bundle holds"},
		{"nested-keys", []entry{reg("governance/keys/x/y.asc", "x")}, "not a file a groundzero bundle holds"},
		{"setuid", []entry{setuid}, "special mode bits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := extract(bytes.NewReader(archive(t, c.entries...)), dir, DefaultLimits)
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("extract(%s) = %v, want an UnsafeEntryError with %q", c.name, err, c.want)
			}
			// Nothing outside dir, and no link inside it.
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "x")); err == nil {
				t.Fatalf("extract(%s) wrote outside the directory", c.name)
			}
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !d.Type().IsRegular() {
					t.Fatalf("extract(%s) left %s, not a regular file", c.name, p)
				}
				return nil
			})
		})
	}
}

// zeros is a reader of n zero bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// bomb is a small gzip of a tar whose entries decompress to size bytes
// each.
func bomb(t *testing.T, names ...string) []byte {
	t.Helper()
	const size = 32 << 20
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: size}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, &zeros{size}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestExtractBounds(t *testing.T) {
	small := Limits{Entries: 3, GitSize: 40 << 20, FileSize: 1 << 20, Total: 48 << 20}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		// A governance file is bounded by its header before a byte is read.
		{"file", bomb(t, "governance/keys/big.asc"), "its size 33554432 exceeds the 1048576 limit"},
		{"entries", archive(t, reg(IndexName, "a"), reg(GitName, "b"), reg("governance/MANIFEST", "c"), reg("governance/signers.yaml", "d")), "the number of entries exceeds the 3 limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.data) > 1<<20 {
				t.Fatalf("the bomb is %d bytes compressed; it should be small", len(c.data))
			}
			_, err := extract(bytes.NewReader(c.data), t.TempDir(), small)
			var le *LimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("extract(%s) = %v, want a LimitError with %q", c.name, err, c.want)
			}
		})
	}
	// The total bound counts decompressed bytes: a stream that claims
	// little and inflates to much stops at the limit.
	total := Limits{Entries: 10, GitSize: 64 << 20, FileSize: 1 << 20, Total: 8 << 20}
	_, err := extract(bytes.NewReader(bomb(t, GitName)), t.TempDir(), total)
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("extract(git bomb) = %v, want a LimitError", err)
	}
}

func TestExtractTrailingData(t *testing.T) {
	data := archive(t, reg(IndexName, "a"))
	// A second archive hidden after the first one's end.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: IndexName, Mode: 0o644, Size: 1})
	tw.Write([]byte("a"))
	tw.Close()
	zw.Write([]byte("hidden"))
	zw.Close()
	if _, err := extract(bytes.NewReader(buf.Bytes()), t.TempDir(), DefaultLimits); err == nil || !strings.Contains(err.Error(), "data after the end") {
		t.Fatalf("extract(trailing) = %v, want data after the end of the archive", err)
	}
	if _, err := extract(bytes.NewReader(data), t.TempDir(), DefaultLimits); err != nil {
		t.Fatalf("extract(clean) = %v", err)
	}
	if _, err := extract(strings.NewReader("not gzip"), t.TempDir(), DefaultLimits); err == nil {
		t.Fatalf("extract(not gzip) = nil, want an error")
	}
}

func TestCheckTree(t *testing.T) {
	for _, c := range []struct {
		link, target string
		ok           bool
	}{
		{"a/in", "../b", true},
		{"a/out", "../../x", false},
		{"abs", "/etc/passwd", false},
		{"git", ".git/config", false},
		{"same", "b", true},
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "a"), 0o755)
		if err := os.Symlink(c.target, filepath.Join(root, c.link)); err != nil {
			t.Fatal(err)
		}
		err := CheckTree(root)
		if (err == nil) != c.ok {
			t.Errorf("CheckTree(%s -> %s) = %v, want ok %v", c.link, c.target, err, c.ok)
		}
	}
}
