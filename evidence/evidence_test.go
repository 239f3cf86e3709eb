package evidence_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/evidence"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type entry struct {
	name string
	typ  byte
	data string
	link string
	size int64 // header size when not len(data)
}

func archive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: t0}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Read refuses every entry that could leave the directory it is unpacked in
// or is not a plain file (T27), naming it.
func TestReadRefusesUnsafeEntries(t *testing.T) {
	ok := entry{name: "INDEX.json", typ: tar.TypeReg, data: "{}\n"}
	for _, tc := range []struct {
		e    entry
		want string
	}{
		{entry{name: "../escape", typ: tar.TypeReg, data: "x"}, `"../escape": climbs out`},
		{entry{name: "a/../../escape", typ: tar.TypeReg, data: "x"}, `climbs out`},
		{entry{name: "/etc/passwd", typ: tar.TypeReg, data: "x"}, `"/etc/passwd": absolute path`},
		{entry{name: "./a", typ: tar.TypeReg, data: "x"}, `not a clean path`},
		{entry{name: `a\..\b`, typ: tar.TypeReg, data: "x"}, `backslash`},
		{entry{name: "a\nb", typ: tar.TypeReg, data: "x"}, `control character`},
		{entry{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"}, `"link": a symbolic link (to /etc/passwd)`},
		{entry{name: "hard", typ: tar.TypeLink, link: "INDEX.json"}, `a hard link`},
		{entry{name: "dir/", typ: tar.TypeDir}, `climbs out with .. or is not a clean path`},
		{entry{name: "dir", typ: tar.TypeDir}, `a directory`},
		{entry{name: "fifo", typ: tar.TypeFifo}, `not a plain file`},
		{entry{name: "INDEX.json", typ: tar.TypeReg, data: "again"}, `appears twice`},
	} {
		_, err := evidence.Read(bytes.NewReader(archive(t, ok, tc.e)))
		var pe *evidence.PathError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q) = %v, want a *PathError with %q", tc.e.name, err, tc.want)
		}
	}
	if _, err := evidence.Read(bytes.NewReader(archive(t, ok))); err != nil {
		t.Errorf("Read(one plain file) = %v", err)
	}
	if _, err := evidence.Read(strings.NewReader("not gzip")); err == nil {
		t.Errorf("Read(not gzip) = nil error")
	}
}

// Read bounds what it unpacks (T8): a header that claims more than
// MaxFileSize is refused before anything is read, and so is a bomb that
// unpacks beyond MaxTotalSize.
func TestReadBounds(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: evidence.MaxFileSize + 1, Mode: 0o644})
	zw.Close() // truncated: the bound is checked on the header
	_, err := evidence.Read(bytes.NewReader(buf.Bytes()))
	var se *evidence.SizeError
	if !errors.As(err, &se) {
		t.Errorf("Read(huge header) = %v, want *SizeError", err)
	}

	// Zeros compress to almost nothing: files within the per-file bound
	// that together unpack beyond the total are refused, and so are more
	// files than the bound allows.
	lim := evidence.Limits{Files: 3, FileSize: 1 << 20, TotalSize: 2<<20 + 1}
	zeros := func(n int) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for i := 0; i < n; i++ {
			tw.WriteHeader(&tar.Header{Name: "zeros" + string(rune('a'+i)), Typeflag: tar.TypeReg, Size: 1 << 20, Mode: 0o644})
			tw.Write(make([]byte, 1<<20))
		}
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	if _, err := evidence.ReadLimited(bytes.NewReader(zeros(2)), lim); err != nil {
		t.Errorf("ReadLimited(within bounds) = %v", err)
	}
	_, err = evidence.ReadLimited(bytes.NewReader(zeros(3)), lim)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `"zerosc": the bundle unpacks to more than 2097153 bytes`) {
		t.Errorf("ReadLimited(bomb) = %v, want *SizeError for the total", err)
	}
	lim.TotalSize = 1 << 30
	_, err = evidence.ReadLimited(bytes.NewReader(zeros(4)), lim)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "more than 3 files") {
		t.Errorf("ReadLimited(4 files) = %v, want *SizeError for the count", err)
	}
}

func index(files ...evidence.File) *evidence.Index {
	return &evidence.Index{Kind: evidence.Kind, Created: "2026-12-01T09:00:00Z", Exporter: "alice", Files: files}
}

// An index round-trips; non-canonical bytes, another kind, unknown fields,
// duplicate keys, unsorted or unsafe paths are refused (T10).
func TestParseIndex(t *testing.T) {
	ix := index(evidence.File{Path: "a", SHA256: evidence.SHA256([]byte("a")), Size: 1, Class: "trail"})
	data, err := ix.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := evidence.ParseIndex(data)
	if err != nil {
		t.Fatalf("ParseIndex(Marshal()) = %v", err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(again, data) {
		t.Errorf("round trip changed the index:\n%s\n%s", data, again)
	}
	s := string(data)
	sum := evidence.SHA256([]byte("a"))
	for name, bad := range map[string]string{
		"spaces":      strings.Replace(s, `{"created"`, `{ "created"`, 1),
		"kind":        strings.Replace(s, evidence.Kind, "groundzero.evidence/v2", 1),
		"unknown":     strings.Replace(s, `{"created"`, `{"a":1,"created"`, 1),
		"duplicate":   strings.Replace(s, `"created":"2026-12-01T09:00:00Z"`, `"created":"2026-12-01T09:00:00Z","created":"2026-12-01T09:00:00Z"`, 1),
		"unsafe path": strings.Replace(s, `"path":"a"`, `"path":"../a"`, 1),
		"bad hash":    strings.Replace(s, sum, strings.ToUpper(sum), 1),
		"lists index": strings.Replace(s, `"path":"a"`, `"path":"INDEX.json"`, 1),
		"no newline":  strings.TrimSuffix(s, "\n"),
	} {
		if _, err := evidence.ParseIndex([]byte(bad)); err == nil {
			t.Errorf("ParseIndex(%s) = nil error", name)
		}
	}
	two := index(evidence.File{Path: "b", SHA256: sum, Controls: []string{}}, evidence.File{Path: "a", SHA256: sum, Controls: []string{}})
	data, _ = two.Marshal()
	if _, err := evidence.ParseIndex(data); err == nil || !strings.Contains(err.Error(), "not sorted") {
		t.Errorf("ParseIndex(unsorted) = %v, want not sorted", err)
	}
}

// CheckFiles names each modified, missing and extra file, and a SHA256SUMS
// that disagrees with the index.
func TestCheckFiles(t *testing.T) {
	files := map[string][]byte{"a": []byte("a"), "b": []byte("b")}
	ix := index(evidence.File{Path: "a", SHA256: evidence.SHA256(files["a"]), Size: 1},
		evidence.File{Path: "b", SHA256: evidence.SHA256(files["b"]), Size: 1})
	files[evidence.SumsFile] = evidence.Sums(ix)
	ix.Files = append([]evidence.File{{Path: evidence.SumsFile, SHA256: evidence.SHA256(files[evidence.SumsFile]), Size: int64(len(files[evidence.SumsFile]))}}, ix.Files...)
	data, _ := ix.Marshal()
	files[evidence.IndexFile] = data
	var buf bytes.Buffer
	if err := evidence.Write(&buf, files, t0); err != nil {
		t.Fatal(err)
	}
	b, err := evidence.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ix, _ = evidence.ParseIndex(b.Files[evidence.IndexFile])
	if ps := evidence.CheckFiles(b, ix); len(ps) != 0 {
		t.Fatalf("CheckFiles(intact) = %v", ps)
	}
	b.Files["a"] = []byte("A")
	delete(b.Files, "b")
	b.Names = append(b.Names, "extra")
	b.Files["extra"] = nil
	var got []string
	for _, p := range evidence.CheckFiles(b, ix) {
		got = append(got, p.String())
	}
	want := "a: modified: its SHA-256 differs from the index|b: missing from the bundle|extra: extra: not listed in the index"
	if strings.Join(got, "|") != want {
		t.Errorf("CheckFiles = %q, want %q", strings.Join(got, "|"), want)
	}
}

// The public package is for outside verifiers: it imports only the
// standard library, golang.org/x/mod and the other public packages.
func TestImportsArePinned(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/groundzero/groundzero/evidence").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/groundzero/groundzero/evidence", dep == "github.com/groundzero/groundzero/audit",
			dep == "github.com/groundzero/groundzero/record", strings.HasPrefix(dep, "golang.org/x/mod/"), strings.HasPrefix(dep, "golang.org/x/crypto/"):
		default:
			t.Errorf("package evidence depends on %s", dep)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(archive(f, entry{name: "INDEX.json", typ: tar.TypeReg, data: "{}\n"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := evidence.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, n := range b.Names {
			if evidence.CheckName(n) != nil {
				t.Errorf("Read accepted %q", n)
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	data, _ := index(evidence.File{Path: "a", SHA256: evidence.SHA256(nil), Controls: []string{"X"}}).Marshal()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := evidence.ParseIndex(data)
		if err != nil {
			return
		}
		out, err := ix.Marshal()
		if err != nil || !bytes.Equal(out, data) {
			t.Errorf("ParseIndex accepted bytes that do not re-encode to themselves")
		}
	})
}
