package tfrun_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/tfrun"
)

func writeExe(t *testing.T, p, script string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The engine never comes from inside the repository, however it is named,
// and the repository's own .tools/bin/tofu is no longer a default.
func TestFind(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	inRepo := writeExe(t, filepath.Join(repo, ".tools", "bin", "tofu"), "#!/bin/sh\n")
	outside := writeExe(t, filepath.Join(base, "opt", "tofu"), "#!/bin/sh\n")
	pathDir := filepath.Join(base, "pathbin")
	writeExe(t, filepath.Join(pathDir, "tofu"), "#!/bin/sh\n")
	// A symbolic link outside the repository to the binary inside it.
	link := filepath.Join(base, "link-tofu")
	if err := os.Symlink(inRepo, link); err != nil {
		t.Fatal(err)
	}
	// The repository reached through a symbolic link.
	repoLink := filepath.Join(base, "repo-link")
	if err := os.Symlink(repo, repoLink); err != nil {
		t.Fatal(err)
	}
	noEnv := env(nil)

	for _, c := range []struct {
		name       string
		flag       string
		getenv     func(string) string
		path, root string
		want       string // the binary found, or ""
		inRepo     string // the source an *InRepoError names
		notFound   bool
	}{
		{name: "flag outside", flag: outside, getenv: env(map[string]string{"GROUNDZERO_TF_BINARY": inRepo}), root: repo, want: outside},
		{name: "env outside", getenv: env(map[string]string{"GROUNDZERO_TF_BINARY": outside}), root: repo, want: outside},
		{name: "PATH outside", getenv: noEnv, path: pathDir, root: repo, want: filepath.Join(pathDir, "tofu")},
		{name: "flag inside", flag: inRepo, getenv: noEnv, root: repo, inRepo: tfrun.SourceFlag},
		{name: "env inside", getenv: env(map[string]string{"GROUNDZERO_TF_BINARY": inRepo}), root: repo, inRepo: tfrun.SourceEnv},
		{name: "link to inside", flag: link, getenv: noEnv, root: repo, inRepo: tfrun.SourceFlag},
		{name: "root through link", flag: inRepo, getenv: noEnv, root: repoLink, inRepo: tfrun.SourceFlag},
		{name: "PATH inside", getenv: noEnv, path: filepath.Join(repo, ".tools", "bin"), root: repo, inRepo: tfrun.SourcePATH},
		{name: "no repository default", getenv: noEnv, path: filepath.Join(base, "empty"), root: repo, notFound: true},
		{name: "flag missing", flag: filepath.Join(base, "nope"), getenv: noEnv, root: repo, notFound: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PATH", c.path)
			got, err := tfrun.Find(c.flag, c.getenv, c.root)
			var ire *tfrun.InRepoError
			var nfe *tfrun.NotFoundError
			switch {
			case c.want != "":
				if err != nil || got != c.want {
					t.Fatalf("Find = %q, %v, want %q", got, err, c.want)
				}
			case c.inRepo != "":
				if !errors.As(err, &ire) || ire.Source != c.inRepo || ire.Path != inRepo {
					t.Fatalf("Find = %q, %v, want *InRepoError{%s, %s}", got, err, inRepo, c.inRepo)
				}
				if msg := err.Error(); !strings.Contains(msg, inRepo) || !strings.Contains(msg, c.inRepo) || !strings.Contains(msg, "install OpenTofu outside the repository") {
					t.Fatalf("error %q does not name the binary, its source and the fix", msg)
				}
			case c.notFound:
				if !errors.As(err, &nfe) {
					t.Fatalf("Find = %q, %v, want *NotFoundError", got, err)
				}
			}
		})
	}
}
