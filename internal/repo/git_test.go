package repo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGitEnv(t *testing.T) {
	in := []string{
		"PATH=/usr/bin", "HOME=/home/u", "GNUPGHOME=/home/u/.gnupg", "SSH_AUTH_SOCK=/tmp/agent", "XDG_CONFIG_HOME=/home/u/.config",
		"LC_ALL=fr_FR.UTF-8", "GIT_DIR=/evil/.git", "GIT_WORK_TREE=/evil", "GIT_INDEX_FILE=/evil/index", "GIT_COMMON_DIR=/evil",
		"GIT_OBJECT_DIRECTORY=/evil/objects", "GIT_ALTERNATE_OBJECT_DIRECTORIES=/evil/objects", "GIT_NAMESPACE=evil",
		"GIT_REPLACE_REF_BASE=refs/evil/", "GIT_GRAFT_FILE=/evil/grafts", "GIT_CEILING_DIRECTORIES=/", "GIT_CONFIG=/evil/config",
		"GIT_CONFIG_GLOBAL=/evil/gitconfig", "GIT_CONFIG_SYSTEM=/evil/gitconfig", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=core.useReplaceRefs", "GIT_CONFIG_VALUE_0=true", "GIT_CONFIG_PARAMETERS='core.worktree'='/evil'",
		"GIT_EXEC_PATH=/evil/bin", "GIT_NO_REPLACE_OBJECTS=", "GIT_TERMINAL_PROMPT=1",
	}
	got := GitEnv(in)
	want := []string{
		"PATH=/usr/bin", "HOME=/home/u", "GNUPGHOME=/home/u/.gnupg", "SSH_AUTH_SOCK=/tmp/agent", "XDG_CONFIG_HOME=/home/u/.config",
		"GIT_NO_REPLACE_OBJECTS=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
	}
	if !slices.Equal(got, want) {
		t.Errorf("GitEnv(%q) = %q, want %q", in, got, want)
	}
}

// git runs the real git for the test's own setup, in a clean environment.
func git(t *testing.T, home, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.test"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestGitReadsOwnRepository runs Repo.Git with every variable that would
// point git at another repository, other objects or replace refs set in the
// process environment, and with replace refs switched on in the repository's
// configuration: it still reads the repository's own commits.
func TestGitReadsOwnRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	home := t.TempDir()
	real, evil := filepath.Join(t.TempDir(), "real"), filepath.Join(t.TempDir(), "evil")
	for _, d := range []string{real, evil} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		git(t, home, d, "init", "-q")
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(filepath.Base(d)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, home, d, "add", "f")
		git(t, home, d, "commit", "-qm", filepath.Base(d))
	}
	head := git(t, home, real, "rev-parse", "HEAD")
	evilHead := git(t, home, evil, "rev-parse", "HEAD")
	forged := git(t, home, real, "commit-tree", "-m", "forged", git(t, home, real, "rev-parse", "HEAD^{tree}"))
	git(t, home, real, "update-ref", "refs/replace/"+head, forged)
	git(t, home, real, "config", "core.useReplaceRefs", "true")
	if msg := git(t, home, real, "log", "-1", "--format=%s", head); msg != "forged" {
		t.Fatalf("setup: plain git reads %s as %q, want the replacement", head, msg)
	}

	for k, v := range map[string]string{
		"GIT_DIR": filepath.Join(evil, ".git"), "GIT_WORK_TREE": evil, "GIT_INDEX_FILE": filepath.Join(evil, ".git", "index"),
		"GIT_OBJECT_DIRECTORY":             filepath.Join(evil, ".git", "objects"),
		"GIT_ALTERNATE_OBJECT_DIRECTORIES": filepath.Join(evil, ".git", "objects"),
		"GIT_CONFIG_COUNT":                 "1", "GIT_CONFIG_KEY_0": "core.useReplaceRefs", "GIT_CONFIG_VALUE_0": "true",
		"GIT_CONFIG_GLOBAL": filepath.Join(evil, ".git", "config"),
	} {
		t.Setenv(k, v)
	}
	r := &Repo{Root: real}
	ctx := context.Background()
	out, err := r.Git(ctx, "rev-parse", "HEAD")
	if got := strings.TrimSpace(string(out)); err != nil || got != head {
		t.Errorf("Git(rev-parse HEAD) = %q, %v, want %s (not the other repository's %s)", got, err, head, evilHead)
	}
	out, err = r.Git(ctx, "log", "-1", "--format=%s", head)
	if got := strings.TrimSpace(string(out)); err != nil || got != "real" {
		t.Errorf("Git(log %s) = %q, %v, want real: replace refs must not be read", head, got, err)
	}
	if _, err := r.Git(ctx, "cat-file", "-e", evilHead); err == nil {
		t.Errorf("Git(cat-file -e %s) found the other repository's commit", evilHead)
	}
	out, err = r.Git(ctx, "status", "--porcelain")
	if got := strings.TrimSpace(string(out)); err != nil || got != "" {
		t.Errorf("Git(status) = %q, %v, want a clean work tree", got, err)
	}

	// A file-system monitor hook in the repository's configuration is
	// never asked: it could report a changed work tree as clean.
	called := filepath.Join(t.TempDir(), "fsmonitor-called")
	hook := filepath.Join(t.TempDir(), "fsmonitor")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ntouch "+called+"\nprintf '/\\0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, home, real, "config", "core.fsmonitor", hook)
	if err := os.WriteFile(filepath.Join(real, "f"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = r.Git(ctx, "status", "--porcelain")
	if got := strings.TrimSpace(string(out)); err != nil || got != "M f" {
		t.Errorf("Git(status) after a change = %q, %v, want \"M f\"", got, err)
	}
	if _, err := os.Stat(called); err == nil {
		t.Errorf("Git(status) ran the core.fsmonitor hook")
	}
}
