package tfrun_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/groundzero/groundzero/internal/tfrun"
)

// fakeEngine writes a tiny program that answers `version -json`.
func fakeEngine(t *testing.T, dir, version string) string {
	t.Helper()
	p := filepath.Join(dir, "tofu")
	script := "#!/bin/sh\necho '{\"terraform_version\":\"" + version + "\"}'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The cache serves an identified engine again only while both the binary
// and the cached copy are untouched; any write to either makes a fresh copy.
func TestIdentifyCached(t *testing.T) {
	ctx := context.Background()
	bin := fakeEngine(t, t.TempDir(), "1.2.3")
	cache := filepath.Join(t.TempDir(), "engines")

	first, err := tfrun.IdentifyCached(ctx, bin, cache)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if first.Cached || first.Version != "1.2.3" || first.SHA256 != fileSHA(t, bin) {
		t.Fatalf("IdentifyCached (first) = %+v, want a fresh identification of version 1.2.3", first)
	}
	again, err := tfrun.IdentifyCached(ctx, bin, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != first.Path || again.SHA256 != first.SHA256 || fileSHA(t, again.Path) != first.SHA256 {
		t.Fatalf("IdentifyCached (again) = %+v, want the cached copy of %+v", again, first)
	}
	if fi, err := os.Stat(filepath.Dir(again.Path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache entry: %v, %v; want mode 0700", fi, err)
	}

	// The binary is replaced in place with other bytes: identified afresh.
	fakeEngine(t, filepath.Dir(bin), "9.9.9")
	changed, err := tfrun.IdentifyCached(ctx, bin, cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Cached || changed.Version != "9.9.9" || changed.SHA256 != fileSHA(t, bin) {
		t.Fatalf("IdentifyCached (binary changed) = %+v, want version 9.9.9 identified afresh", changed)
	}

	// The cached copy is tampered with: it is not used.
	os.Chmod(changed.Path, 0o700)
	if err := os.WriteFile(changed.Path, []byte("#!/bin/sh\necho '{\"terraform_version\":\"9.9.9\"}'\ntouch "+filepath.Join(t.TempDir(), "ran")+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	fresh, err := tfrun.IdentifyCached(ctx, bin, cache)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Cached || fileSHA(t, fresh.Path) != fileSHA(t, bin) {
		t.Fatalf("IdentifyCached (copy tampered) = %+v, want a fresh copy of the binary", fresh)
	}

	// A cache inside a git work tree is not used.
	repo := t.TempDir()
	os.Mkdir(filepath.Join(repo, ".git"), 0o755)
	inRepo, err := tfrun.IdentifyCached(ctx, bin, filepath.Join(repo, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	defer inRepo.Close()
	if inRepo.Cached {
		t.Errorf("IdentifyCached (cache in a repository) = %+v, want no cache", inRepo)
	}
	if _, err := os.Stat(filepath.Join(repo, "cache")); err == nil {
		t.Error("a cache was made inside the repository")
	}
}
