package manifest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
)

// sum is the lower-case hex SHA-256 of s, as sha256sum prints it.
func sum(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

func line(content, path string) string { return sum(content) + "  " + path + "\n" }

var (
	hexA = sum("a")
	hexB = sum("b")
)

// validManifest is a canonical MANIFEST covering both governed trees.
var validManifest = line("a", "governance/keys/alice.asc") +
	line("b", "governance/policy.yaml") +
	line("c", "governance/signers.yaml") +
	line("d", "infra/bootstrap/.terraform.lock.hcl") +
	line("e", "infra/bootstrap/main.tf")

func TestParseAccepts(t *testing.T) {
	for name, data := range map[string]string{
		"empty":          "",
		"one entry":      line("x", "governance/policy.yaml"),
		"five entries":   validManifest,
		"space in path":  line("x", "governance/a b.txt"),
		"rego":           line("x", "governance/rego/deny.rego"),
		"manifest-like":  line("x", "governance/MANIFEST.txt"),
		"bootstrap deep": line("x", "infra/bootstrap/modules/net/main.tf"),
	} {
		m, err := manifest.Parse([]byte(data))
		if err != nil {
			t.Errorf("Parse(%s) = %v, want nil error", name, err)
			continue
		}
		if got := m.Format(); !bytes.Equal(got, []byte(data)) {
			t.Errorf("Parse(%s).Format() = %q, want %q", name, got, data)
		}
	}
}

func TestParseEntries(t *testing.T) {
	m, err := manifest.Parse([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 5 {
		t.Fatalf("len(Parse(valid).Entries) = %d, want 5", len(m.Entries))
	}
	e := m.Entries[1]
	if e.Path != "governance/policy.yaml" || e.Sum != sha256.Sum256([]byte("b")) {
		t.Errorf("Parse(valid).Entries[1] = %s %x, want governance/policy.yaml %s", e.Path, e.Sum, hexB)
	}
}

func TestParseRejects(t *testing.T) {
	upper := strings.ToUpper(hexA[:10]) + hexA[10:]
	if upper == hexA {
		t.Fatal("test vector has no letters to upper-case")
	}
	for name, data := range map[string]string{
		"upper-case hex":        upper + "  governance/policy.yaml\n",
		"one space":             hexA + " governance/policy.yaml\n",
		"three spaces":          hexA + "   governance/policy.yaml\n",
		"tab":                   hexA + "\tgovernance/policy.yaml\n",
		"space tab":             hexA + " \tgovernance/policy.yaml\n",
		"binary marker":         hexA + " *governance/policy.yaml\n",
		"escaped name":          "\\" + hexA + "  governance/a\\\\b\n",
		"short hex":             hexA[:63] + "  governance/policy.yaml\n",
		"long hex":              hexA + "0  governance/policy.yaml\n",
		"non-hex":               "g" + hexA[1:] + "  governance/policy.yaml\n",
		"no path":               hexA + "  \n",
		"missing final newline": strings.TrimSuffix(validManifest, "\n"),
		"blank line":            line("a", "governance/a") + "\n" + line("b", "governance/b"),
		"trailing blank line":   validManifest + "\n",
		"only newline":          "\n",
		"CRLF":                  hexA + "  governance/policy.yaml\r\n",
		"unsorted":              line("a", "governance/signers.yaml") + line("b", "governance/policy.yaml"),
		"unsorted across trees": line("a", "infra/bootstrap/main.tf") + line("b", "governance/policy.yaml"),
		"duplicate path":        line("a", "governance/policy.yaml") + line("b", "governance/policy.yaml"),
		"dot-dot":               line("a", "../x"),
		"dot-dot inside":        line("a", "governance/../governance/policy.yaml"),
		"unclean":               line("a", "governance//policy.yaml"),
		"dot segment":           line("a", "governance/./policy.yaml"),
		"trailing slash":        line("a", "governance/keys/"),
		"absolute":              line("a", "/etc/passwd"),
		"absolute governance":   line("a", "/governance/policy.yaml"),
		"backslash":             line("a", `governance\policy.yaml`),
		"backslash inside":      line("a", `governance/keys\alice.asc`),
		"NUL":                   line("a", "governance/a\x00b"),
		"not governed":          line("a", "README.md"),
		"not governed infra":    line("a", "infra/other/main.tf"),
		"governance dir":        line("a", "governance"),
		"MANIFEST itself":       line("a", "governance/MANIFEST"),
		"MANIFEST.asc":          line("a", "governance/MANIFEST.asc"),
		"MANIFEST.sig":          line("a", "governance/MANIFEST.sig"),
		"intents":               line("a", "governance/intents/0001.json"),
		"intents nested":        line("a", "governance/intents/apply/x.json"),
		"intents dir":           line("a", "governance/intents"),
		"tfstate":               line("a", "infra/bootstrap/terraform.tfstate"),
		"tfstate backup":        line("a", "infra/bootstrap/terraform.tfstate.backup"),
		".terraform":            line("a", "infra/bootstrap/.terraform/providers/x"),
	} {
		m, err := manifest.Parse([]byte(data))
		var pe *manifest.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%s) = %v, %v, want *ParseError", name, m, err)
		}
	}
}

func TestParseErrorNamesLine(t *testing.T) {
	data := validManifest + line("z", "README.md")
	_, err := manifest.Parse([]byte(data))
	var pe *manifest.ParseError
	if !errors.As(err, &pe) || pe.Line != 6 {
		t.Fatalf("Parse(non-governed 6th line) = %v, want *ParseError at line 6", err)
	}
	if want := repo.ManifestFile + ":6:"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Parse(non-governed 6th line).Error() = %q, want prefix %q", err, want)
	}
}

func TestParseMaxEntries(t *testing.T) {
	var b strings.Builder
	for i := 0; i < manifest.MaxEntries+1; i++ {
		fmt.Fprintf(&b, "%s  governance/f%07d\n", hexA, i)
	}
	_, err := manifest.Parse([]byte(b.String()))
	var pe *manifest.ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "more than") {
		t.Fatalf("Parse(%d entries) = %v, want *ParseError about more than %d entries", manifest.MaxEntries+1, err, manifest.MaxEntries)
	}

	// Exactly MaxEntries is still accepted.
	s := b.String()
	s = s[:len(s)-len(hexA)-len("  governance/f0000000\n")]
	m, err := manifest.Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%d entries) = %v, want nil error", manifest.MaxEntries, err)
	}
	if len(m.Entries) != manifest.MaxEntries {
		t.Fatalf("len(Parse(%d entries).Entries) = %d, want %d", manifest.MaxEntries, len(m.Entries), manifest.MaxEntries)
	}
}

func TestParseMaxSize(t *testing.T) {
	data := bytes.Repeat([]byte("x"), manifest.MaxSize+1)
	_, err := manifest.Parse(data)
	var pe *manifest.ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "larger than") {
		t.Fatalf("Parse(%d bytes) = %v, want *ParseError about size", len(data), err)
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	m := &manifest.Manifest{Entries: []manifest.Entry{
		{Path: "governance/keys/alice.asc", Sum: sha256.Sum256([]byte("alice"))},
		{Path: "governance/policy.yaml", Sum: sha256.Sum256([]byte("policy"))},
		{Path: "infra/bootstrap/main.tf", Sum: sha256.Sum256([]byte("main"))},
	}}
	b := m.Format()
	got, err := manifest.Parse(b)
	if err != nil {
		t.Fatalf("Parse(Format(m)) = %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("Parse(Format(m)) = %+v, want %+v", got, m)
	}
	if again := got.Format(); !bytes.Equal(again, b) {
		t.Errorf("Format(Parse(Format(m))) = %q, want %q", again, b)
	}
	// The format is sha256sum's: two spaces, lower-case hex.
	want := fmt.Sprintf("%x  governance/keys/alice.asc\n", sha256.Sum256([]byte("alice")))
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("Format(m) = %q, want prefix %q", b, want)
	}
}

func TestIsGoverned(t *testing.T) {
	for p, want := range map[string]bool{
		"governance/policy.yaml":                        true,
		"governance/signers.yaml":                       true,
		"governance/signers.d/1.yaml":                   true,
		"governance/keys/alice.asc":                     true,
		"governance/rego/deny.rego":                     true,
		"governance/MANIFEST":                           false,
		"governance/MANIFEST.asc":                       false,
		"governance/MANIFEST.sig":                       false,
		"governance/MANIFEST.txt":                       true,
		"governance/intents":                            false,
		"governance/intents/x.json":                     false,
		"governance/intents/a/b.json":                   false,
		"governance/intentsx/a.json":                    true,
		"governance":                                    false,
		"governancex/a":                                 false,
		"infra/bootstrap/main.tf":                       true,
		"infra/bootstrap/.terraform.lock.hcl":           true,
		"infra/bootstrap/modules/x/main.tf":             true,
		"infra/bootstrap/.terraform/providers/p":        false,
		"infra/bootstrap/modules/.terraform/x":          false,
		"infra/bootstrap/terraform.tfstate":             false,
		"infra/bootstrap/terraform.tfstate.backup":      false,
		"infra/bootstrap/sub/dev.tfstate":               false,
		"infra/bootstrap/.terraform.tfstate.lock.info":  false,
		"infra/bootstrap/terraform.tfstate.d/dev/x.tf":  true,
		"infra/bootstrap/tfstate":                       true,
		"infra/bootstrap":                               false,
		"infra/other/main.tf":                           false,
		"README.md":                                     false,
		".groundzero/evidence/x":                        false,
		"infra/bootstrap/.terraform-docs.yml":           true,
		"infra/bootstrap/x.tfstate.backup.old":          true,
		"infra/bootstrap/.terraform.tfstate.lock.info2": true,
	} {
		if got := manifest.IsGoverned(p); got != want {
			t.Errorf("IsGoverned(%q) = %v, want %v", p, got, want)
		}
	}
}

// writeFiles creates files (slash paths relative to dir) with the given
// contents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func problems(ps []manifest.Problem) map[string]string {
	out := map[string]string{}
	for _, p := range ps {
		out[p.Path] = p.Kind
	}
	return out
}

func TestBuildCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"governance/policy.yaml":                          "version: 1\n",
		"governance/signers.yaml":                         "version: 1\n",
		"governance/keys/alice.asc":                       "alice\n",
		"governance/MANIFEST.asc":                         "sig\n",
		"governance/intents/0001.json":                    "{}\n",
		"infra/bootstrap/main.tf":                         "terraform {}\n",
		"infra/bootstrap/.terraform.lock.hcl":             "lock\n",
		"infra/bootstrap/.terraform/providers/p":          "binary\n",
		"infra/bootstrap/modules/.terraform/x":            "binary\n",
		"infra/bootstrap/terraform.tfstate":               "{}\n",
		"infra/bootstrap/terraform.tfstate.backup":        "{}\n",
		"infra/bootstrap/.terraform.tfstate.lock.info":    "{}\n",
		"infra/bootstrap/terraform.tfstate.d/dev.tfstate": "{}\n",
		"infra/other/main.tf":                             "x\n",
		"README.md":                                       "readme\n",
	})
	r := &repo.Repo{Root: dir}

	m, err := manifest.Build(ctx, r)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	wantPaths := []string{
		"governance/keys/alice.asc",
		"governance/policy.yaml",
		"governance/signers.yaml",
		"infra/bootstrap/.terraform.lock.hcl",
		"infra/bootstrap/main.tf",
	}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Fatalf("Build paths = %q, want %q", paths, wantPaths)
	}
	if want := sha256.Sum256([]byte("version: 1\n")); m.Entries[1].Sum != want {
		t.Errorf("Build sum of policy.yaml = %x, want %x", m.Entries[1].Sum, want)
	}
	// What Build writes, Parse reads back unchanged.
	parsed, err := manifest.Parse(m.Format())
	if err != nil {
		t.Fatalf("Parse(Build.Format()) = %v", err)
	}
	if !reflect.DeepEqual(parsed, m) {
		t.Errorf("Parse(Build.Format()) = %+v, want %+v", parsed, m)
	}

	ps, err := manifest.Check(ctx, r, m)
	if err != nil || len(ps) != 0 {
		t.Fatalf("Check(fresh manifest) = %v, %v, want no problems", ps, err)
	}

	// Files that are not governed may change freely.
	writeFiles(t, dir, map[string]string{
		"governance/intents/0002.json":           "{}\n",
		"governance/MANIFEST.asc":                "other sig\n",
		"infra/bootstrap/.terraform/providers/q": "new\n",
		"infra/bootstrap/terraform.tfstate":      "{\"serial\": 2}\n",
		"README.md":                              "changed\n",
	})
	if ps, err := manifest.Check(ctx, r, m); err != nil || len(ps) != 0 {
		t.Fatalf("Check(after ungoverned changes) = %v, %v, want no problems", ps, err)
	}

	// Modify one, add one, remove one.
	writeFiles(t, dir, map[string]string{
		"governance/policy.yaml":  "version: 2\n",
		"infra/bootstrap/new.tf":  "resource {}\n",
		"governance/keys/bob.asc": "bob\n",
	})
	if err := os.Remove(filepath.Join(dir, "infra", "bootstrap", "main.tf")); err != nil {
		t.Fatal(err)
	}
	ps, err = manifest.Check(ctx, r, m)
	if err != nil {
		t.Fatalf("Check(after changes) = %v", err)
	}
	want := map[string]string{
		"governance/keys/bob.asc": "unlisted",
		"governance/policy.yaml":  "modified",
		"infra/bootstrap/main.tf": "missing",
		"infra/bootstrap/new.tf":  "unlisted",
	}
	if got := problems(ps); !reflect.DeepEqual(got, want) {
		t.Errorf("Check(after changes) = %v, want %v", got, want)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Path > ps[i].Path {
			t.Errorf("Check problems not sorted: %q before %q", ps[i-1].Path, ps[i].Path)
		}
	}
	for _, p := range ps {
		if s := p.String(); !strings.HasPrefix(s, p.Path+": ") {
			t.Errorf("Problem%v.String() = %q, want prefix %q", p, s, p.Path+": ")
		}
	}

	// Rebuilding accepts the new tree.
	m2, err := manifest.Build(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := manifest.Check(ctx, r, m2); err != nil || len(ps) != 0 {
		t.Fatalf("Check(rebuilt manifest) = %v, %v, want no problems", ps, err)
	}
}

func TestBuildEmptyRepo(t *testing.T) {
	r := &repo.Repo{Root: t.TempDir()}
	m, err := manifest.Build(context.Background(), r)
	if err != nil || len(m.Entries) != 0 {
		t.Fatalf("Build(empty dir) = %+v, %v, want no entries", m, err)
	}
	if got := m.Format(); len(got) != 0 {
		t.Errorf("Build(empty dir).Format() = %q, want empty", got)
	}
}

func requireSymlinkRefused(t *testing.T, dir, what string) {
	t.Helper()
	r := &repo.Repo{Root: dir}
	got, err := manifest.Governed(r)
	var pe *repo.PathError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "symbolic link") {
		t.Errorf("Governed(%s) = %q, %v, want *repo.PathError about a symbolic link", what, got, err)
	}
	if m, err := manifest.Build(context.Background(), r); err == nil {
		t.Errorf("Build(%s) = %d entries, nil error, want error", what, len(m.Entries))
	}
	if ps, err := manifest.Check(context.Background(), r, &manifest.Manifest{}); err == nil {
		t.Errorf("Check(%s) = %v, nil error, want error", what, ps)
	}
}

// T27: a symbolic link anywhere a governed file could be is refused.
func TestGovernedRefusesSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret": "outside\n", "dir/x.tf": "x\n"})

	cases := map[string]func(dir string) error{
		"file symlink in governance": func(dir string) error {
			return os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "governance", "keys", "evil.asc"))
		},
		"relative file symlink in governance": func(dir string) error {
			return os.Symlink("policy.yaml", filepath.Join(dir, "governance", "alias.yaml"))
		},
		"dangling symlink in governance": func(dir string) error {
			return os.Symlink("nowhere", filepath.Join(dir, "governance", "dangling"))
		},
		"dir symlink in governance": func(dir string) error {
			return os.Symlink(filepath.Join(outside, "dir"), filepath.Join(dir, "governance", "rego"))
		},
		"file symlink in bootstrap": func(dir string) error {
			return os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "infra", "bootstrap", "x.tf"))
		},
		"dir symlink in bootstrap": func(dir string) error {
			return os.Symlink(filepath.Join(outside, "dir"), filepath.Join(dir, "infra", "bootstrap", "modules"))
		},
	}
	for name, mk := range cases {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"governance/policy.yaml":  "version: 1\n",
			"infra/bootstrap/main.tf": "terraform {}\n",
		})
		if err := os.MkdirAll(filepath.Join(dir, "governance", "keys"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := mk(dir); err != nil {
			t.Fatal(err)
		}
		requireSymlinkRefused(t, dir, name)
	}
}

// Symbolic links where no governed file can be are ignored, like any other
// ungoverned file.
func TestGovernedIgnoresUngovernedSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"governance/policy.yaml":       "version: 1\n",
		"governance/intents/0001.json": "{}\n",
		"infra/bootstrap/main.tf":      "terraform {}\n",
	})
	for link, target := range map[string]string{
		"governance/intents/latest.json":    "0001.json",
		"infra/bootstrap/terraform.tfstate": "/dev/null",
		"infra/bootstrap/.terraform":        "/tmp",
		"README.md":                         "governance/policy.yaml",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := manifest.Governed(&repo.Repo{Root: dir})
	want := []string{"governance/policy.yaml", "infra/bootstrap/main.tf"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Governed(ungoverned symlinks) = %q, %v, want %q", got, err, want)
	}
}

// T27: the governed directories themselves, or a directory above them, must
// not be symbolic links either: otherwise the governed tree lives outside the
// repository (or, for governance/, silently drops out of the manifest).
func TestGovernedRefusesSymlinkedTopDirs(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{
		"governance/policy.yaml":  "version: 1\n",
		"infra/bootstrap/main.tf": "terraform {}\n",
	})
	for name, link := range map[string]string{
		"governance is a symlink":      "governance",
		"infra/bootstrap is a symlink": "infra/bootstrap",
		"infra is a symlink":           "infra",
	} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, filepath.FromSlash(link))), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, filepath.FromSlash(link)), filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
		requireSymlinkRefused(t, dir, name)
	}
}

func TestGovernedRefusesOddNames(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"governance/policy.yaml": "version: 1\n",
		"governance/a\\b":        "backslash\n",
	})
	got, err := manifest.Governed(&repo.Repo{Root: dir})
	var pe *repo.PathError
	if !errors.As(err, &pe) {
		t.Fatalf(`Governed(governance/a\b) = %q, %v, want *repo.PathError`, got, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte(validManifest))
	f.Add([]byte(line("a", "governance/policy.yaml")))
	f.Add([]byte(line("a", "infra/bootstrap/main.tf")))
	f.Add([]byte(strings.TrimSuffix(validManifest, "\n")))
	f.Add([]byte(strings.ToUpper(hexA) + "  governance/policy.yaml\n"))
	f.Add([]byte(hexA + " governance/policy.yaml\n"))
	f.Add([]byte(hexA + "\tgovernance/policy.yaml\n"))
	f.Add([]byte(line("a", "governance/signers.yaml") + line("b", "governance/policy.yaml")))
	f.Add([]byte(line("a", "governance/policy.yaml") + line("b", "governance/policy.yaml")))
	f.Add([]byte(line("a", "../x")))
	f.Add([]byte(line("a", "/governance/x")))
	f.Add([]byte(line("a", `governance\x`)))
	f.Add([]byte(line("a", "governance/intents/x")))
	f.Add([]byte(line("a", "README.md")))
	f.Add([]byte(hexA + "  governance/x\r\n"))
	f.Add([]byte("# groundzero.manifest/v1 version=1 previous=none\n" + validManifest))
	f.Add([]byte("# groundzero.manifest/v1 version=2 previous=" + hexA + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := manifest.Parse(data)
		if err != nil {
			var pe *manifest.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %T %v, want *ParseError", data, err, err)
			}
			return
		}
		if got := m.Format(); !bytes.Equal(got, data) {
			t.Fatalf("Parse(%q).Format() = %q, want identical bytes", data, got)
		}
		for i, e := range m.Entries {
			if err := repo.CheckRel(e.Path); err != nil || !manifest.IsGoverned(e.Path) {
				t.Fatalf("Parse(%q) accepted path %q (CheckRel %v, IsGoverned %v)", data, e.Path, err, manifest.IsGoverned(e.Path))
			}
			if i > 0 && m.Entries[i-1].Path >= e.Path {
				t.Fatalf("Parse(%q) accepted %q after %q", data, e.Path, m.Entries[i-1].Path)
			}
		}
		again, err := manifest.Parse(m.Format())
		if err != nil || !reflect.DeepEqual(again.Entries, m.Entries) && len(m.Entries) > 0 {
			t.Fatalf("Parse(Format(Parse(%q))) = %v, want the same entries", data, err)
		}
	})
}

// The version line round-trips, is skipped by `sha256sum --strict -c`, and
// only its exact form is accepted.
func TestVersionLine(t *testing.T) {
	v1 := "# groundzero.manifest/v1 version=1 previous=none\n" + validManifest
	m, err := manifest.Parse([]byte(v1))
	if err != nil {
		t.Fatalf("Parse(version 1) = %v", err)
	}
	if m.Version != 1 || m.Previous != "" || string(m.Format()) != v1 {
		t.Errorf("Parse(version 1) = version %d previous %q, round trip %q", m.Version, m.Previous, m.Format())
	}
	next := m.Next([]byte(v1), m.Entries)
	sum := sha256.Sum256([]byte(v1))
	if next.Version != 2 || next.Previous != hex.EncodeToString(sum[:]) {
		t.Errorf("Next() = version %d previous %s, want 2 and the SHA-256 of version 1", next.Version, next.Previous)
	}
	again, err := manifest.Parse(next.Format())
	if err != nil || again.Version != 2 || again.Previous != next.Previous || !again.SameEntries(m) {
		t.Errorf("Parse(Format(version 2)) = %+v, %v", again, err)
	}
	for _, bad := range []string{
		"# groundzero.manifest/v1 version=2 previous=none\n",
		"# groundzero.manifest/v1 version=1 previous=" + hexA + "\n",
		"# groundzero.manifest/v1 version=0 previous=none\n",
		"# groundzero.manifest/v1 version=01 previous=none\n",
		"# groundzero.manifest/v1  version=1 previous=none\n",
		"# a comment\n" + validManifest,
		validManifest + "# groundzero.manifest/v1 version=1 previous=none\n",
	} {
		if _, err := manifest.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = nil error, want the version line refused", bad)
		}
	}
}
