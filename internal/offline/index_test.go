package offline

import (
	"bytes"
	"strings"
	"testing"
)

func validIndex() *Index {
	h := strings.Repeat("a", 64)
	return &Index{
		Kind: Kind, Tag: "v1", TagObject: strings.Repeat("1", 40), Commit: strings.Repeat("2", 40),
		Created:  "2026-12-01T18:00:00Z",
		Registry: Version{1, h}, Manifest: Version{1, h},
		Files: []File{{"governance/MANIFEST", h, 10}, {"governance/keys/a.asc", h, 3}, {GitName, h, 100}},
	}
}

func TestParseIndexRoundTrip(t *testing.T) {
	raw, err := validIndex().Format()
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ParseIndex(raw)
	if err != nil {
		t.Fatalf("ParseIndex(valid) = %v", err)
	}
	again, _ := ix.Format()
	if !bytes.Equal(raw, again) {
		t.Fatalf("Format(ParseIndex(raw)) = %s, want %s", again, raw)
	}
}

func TestParseIndexRefuses(t *testing.T) {
	mut := map[string]func(*Index){
		"kind":        func(ix *Index) { ix.Kind = "groundzero.intent/v1" },
		"tag-option":  func(ix *Index) { ix.Tag = "--upload-pack=x" },
		"tag-dotdot":  func(ix *Index) { ix.Tag = "a..b" },
		"commit":      func(ix *Index) { ix.Commit = "HEAD" },
		"created":     func(ix *Index) { ix.Created = "yesterday" },
		"no-files":    func(ix *Index) { ix.Files = nil },
		"no-git":      func(ix *Index) { ix.Files = ix.Files[:2] },
		"unsorted":    func(ix *Index) { ix.Files[0], ix.Files[1] = ix.Files[1], ix.Files[0] },
		"duplicate":   func(ix *Index) { ix.Files[1] = ix.Files[0] },
		"traversal":   func(ix *Index) { ix.Files[0].Path = "../governance/MANIFEST" },
		"index-entry": func(ix *Index) { ix.Files[0].Path = IndexName },
		"bad-sha":     func(ix *Index) { ix.Files[0].SHA256 = "zz" },
	}
	for name, m := range mut {
		ix := validIndex()
		m(ix)
		raw, err := ix.Format()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIndex(raw); err == nil {
			t.Errorf("ParseIndex(%s) = nil, want an IndexError", name)
		}
	}
	raw, _ := validIndex().Format()
	for name, data := range map[string][]byte{
		"spaces":      bytes.Replace(raw, []byte(`{"commit"`), []byte(`{ "commit"`), 1),
		"no-newline":  bytes.TrimSuffix(raw, []byte("\n")),
		"dup-key":     bytes.Replace(raw, []byte(`{"commit"`), []byte(`{"commit":"x","commit"`), 1),
		"extra-field": bytes.Replace(raw, []byte(`{"commit"`), []byte(`{"a":1,"commit"`), 1),
	} {
		if _, err := ParseIndex(data); err == nil {
			t.Errorf("ParseIndex(%s) = nil, want an error", name)
		}
	}
}

// FuzzParseIndex: whatever ParseIndex accepts re-encodes to the same bytes
// and passes again.
func FuzzParseIndex(f *testing.F) {
	raw, _ := validIndex().Format()
	f.Add(raw)
	f.Add([]byte("{}\n"))
	f.Add(bytes.Replace(raw, []byte(`"v1"`), []byte(`"v1\u0000"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		out, err := ix.Format()
		if err != nil {
			t.Fatalf("Format of an accepted index: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("ParseIndex accepted %q, which formats as %q", data, out)
		}
		if _, err := ParseIndex(out); err != nil {
			t.Fatalf("ParseIndex(Format(ix)) = %v", err)
		}
	})
}
