package tfrun_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/tfrun"
)

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The real pinned OpenTofu: its version as it reports it, the SHA-256 of its
// bytes, and a pin on either is enforced.
func TestIdentifyPinned(t *testing.T) {
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tfrun.Identify(context.Background(), tofu)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	wantVersion := strings.TrimPrefix(pinned.TofuVersion, "v")
	if e.Version != wantVersion {
		t.Errorf("Identify(%s).Version = %q, want %q", tofu, e.Version, wantVersion)
	}
	sum := fileSHA(t, tofu)
	if e.SHA256 != sum {
		t.Errorf("Identify(%s).SHA256 = %s, want %s", tofu, e.SHA256, sum)
	}
	if e.Path == tofu || fileSHA(t, e.Path) != sum {
		t.Errorf("Identify(%s).Path = %s, want a private copy with the same bytes", tofu, e.Path)
	}
	if fi, err := os.Stat(filepath.Dir(e.Path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the copy's directory: %v, %v; want mode 0700", fi, err)
	}

	for _, c := range []struct {
		version, sha string
		fields       []string // the mismatching fields
	}{
		{"", "", nil},
		{wantVersion, "", nil},
		{"v" + wantVersion, strings.ToUpper(sum), nil},
		{"1.6.0", "", []string{"version"}},
		{"", strings.Repeat("0", 64), []string{"sha256"}},
		{"1.6.0", strings.Repeat("0", 64), []string{"version", "sha256"}},
	} {
		err := tfrun.Check(e, c.version, c.sha)
		if len(c.fields) == 0 {
			if err != nil {
				t.Errorf("Check(%q, %q) = %v, want nil", c.version, c.sha, err)
			}
			continue
		}
		var me *tfrun.EngineMismatchError
		if !errors.As(err, &me) || me.Field != c.fields[0] {
			t.Fatalf("Check(%q, %q) = %v, want *EngineMismatchError for %s", c.version, c.sha, err, c.fields[0])
		}
		for _, f := range c.fields {
			want, got := c.version, e.Version
			if f == "sha256" {
				want, got = c.sha, e.SHA256
			}
			if msg := err.Error(); !strings.Contains(msg, "engine."+f+" "+want) || !strings.Contains(msg, f+" "+got) {
				t.Errorf("Check(%q, %q) = %q, want both %s values (%s, %s)", c.version, c.sha, msg, f, want, got)
			}
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close the copy %s still exists: %v", e.Path, err)
	}
}

// What was hashed is what runs: replacing the binary after Identify does not
// change what the Engine runs (T30).
func TestIdentifySwap(t *testing.T) {
	bin := writeExe(t, filepath.Join(t.TempDir(), "tofu"), "#!/bin/sh\necho '{\"terraform_version\": \"1.12.6\"}'\n")
	e, err := tfrun.Identify(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Version != "1.12.6" || e.SHA256 != fileSHA(t, bin) {
		t.Fatalf("Identify = %+v", e)
	}
	writeExe(t, bin, "#!/bin/sh\necho '{\"terraform_version\": \"6.6.6\"}'\n")
	out, err := exec.Command(e.Path).Output()
	if err != nil || !strings.Contains(string(out), "1.12.6") {
		t.Fatalf("running the identified engine after the swap = %q, %v; want the checked bytes", out, err)
	}
}

func TestIdentifyRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, script := range map[string]string{
		"noversion": "#!/bin/sh\necho '{}'\n",
		"notjson":   "#!/bin/sh\necho 'OpenTofu v1.12.6'\n",
		"fails":     "#!/bin/sh\nexit 3\n",
	} {
		bin := writeExe(t, filepath.Join(dir, name), script)
		e, err := tfrun.Identify(context.Background(), bin)
		var ee *tfrun.EngineError
		if !errors.As(err, &ee) || ee.Path != bin {
			t.Errorf("Identify(%s) = %+v, %v; want *EngineError naming it", name, e, err)
		}
	}
	if _, err := tfrun.Identify(context.Background(), dir); err == nil {
		t.Errorf("Identify(directory) = nil error")
	}
}

func TestNewDataDir(t *testing.T) {
	dir, cleanup, err := tfrun.NewDataDir()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("NewDataDir() = %s: %v, %v; want mode 0700", dir, fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, tfrun.CLIConfigName)); err != nil || string(b) != tfrun.CLIConfig {
		t.Fatalf("CLI configuration = %q, %v", b, err)
	}
	cleanup()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cleanup left %s: %v", dir, err)
	}

	// A TMPDIR inside a git work tree is refused.
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(repo, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	_, _, err = tfrun.NewDataDir()
	var ire *tfrun.DataDirInRepoError
	if !errors.As(err, &ire) || ire.Repo != repo {
		t.Fatalf("NewDataDir() with TMPDIR in a repository = %v, want *DataDirInRepoError naming %s", err, repo)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("NewDataDir left %d entries in %s", len(ents), tmp)
	}
}

// Run refuses to start without a private data directory that NewDataDir made.
func TestRunNeedsDataDir(t *testing.T) {
	bin := writeExe(t, filepath.Join(t.TempDir(), "tofu"), "#!/bin/sh\necho ran\n")
	open := t.TempDir()
	os.Chmod(open, 0o755)
	private := t.TempDir()
	os.Chmod(private, 0o700)
	tampered, cleanup, err := tfrun.NewDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if err := os.WriteFile(filepath.Join(tampered, tfrun.CLIConfigName), []byte("provider_installation {\n  dev_overrides {}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dd := range []string{"", "relative", filepath.Join(open, "missing"), open, private, tampered} {
		r := &tfrun.Runner{Bin: bin, Dir: t.TempDir(), DataDir: dd}
		out, err := r.Run(context.Background(), nil, "version")
		var de *tfrun.DataDirError
		if !errors.As(err, &de) || len(out) != 0 {
			t.Errorf("Run with DataDir %q = %q, %v; want *DataDirError and no run", dd, out, err)
		}
	}
}
