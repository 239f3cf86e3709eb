package manifest_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/groundzero/groundzero/internal/ciwork"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
)

// The CI configuration init --ci writes is governed; other CI files are not.
func TestCIFilesGoverned(t *testing.T) {
	for _, p := range ciwork.Providers {
		if !slices.Contains(manifest.CIFiles, ciwork.Path(p)) {
			t.Errorf("manifest.CIFiles = %q, want it to hold %s, which init --ci %s writes", manifest.CIFiles, ciwork.Path(p), p)
		}
	}
	for p, want := range map[string]bool{
		".github/workflows/groundzero.yml":  true,
		".gitlab-ci.yml":                    true,
		".github/workflows/other.yml":       false,
		".github/workflows/groundzero.yaml": false,
		"sub/.gitlab-ci.yml":                false,
		".github/workflows":                 false,
	} {
		if got := manifest.IsGoverned(p); got != want {
			t.Errorf("IsGoverned(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestBuildCheckCIFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"governance/policy.yaml":           "version: 1\n",
		".github/workflows/groundzero.yml": "on: push\n",
		".github/workflows/other.yml":      "on: push\n",
		".gitlab-ci.yml":                   "stages: [check]\n",
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
	want := []string{".github/workflows/groundzero.yml", ".gitlab-ci.yml", "governance/policy.yaml"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("Build paths = %q, want %q", paths, want)
	}
	writeFiles(t, dir, map[string]string{".github/workflows/groundzero.yml": "on: push\nenv: {SSL_CERT_FILE: /tmp/ca.pem}\n"})
	if err := os.Remove(filepath.Join(dir, ".gitlab-ci.yml")); err != nil {
		t.Fatal(err)
	}
	ps, err := manifest.Check(ctx, r, m)
	if err != nil {
		t.Fatalf("Check = %v", err)
	}
	if got, want := problems(ps), map[string]string{".github/workflows/groundzero.yml": "modified", ".gitlab-ci.yml": "missing"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Check(workflow edited, GitLab file removed) = %v, want %v", got, want)
	}
}

// T27: the CI files, or a directory above them, as symbolic links.
func TestGovernedRefusesSymlinkedCIFiles(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"ci.yml": "on: push\n", "workflows/groundzero.yml": "on: push\n"})
	for name, mk := range map[string]func(dir string) error{
		"gitlab file": func(dir string) error {
			return os.Symlink(filepath.Join(outside, "ci.yml"), filepath.Join(dir, ".gitlab-ci.yml"))
		},
		"workflow file": func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755); err != nil {
				return err
			}
			return os.Symlink(filepath.Join(outside, "ci.yml"), filepath.Join(dir, ".github", "workflows", "groundzero.yml"))
		},
		"workflows dir": func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, ".github"), 0o755); err != nil {
				return err
			}
			return os.Symlink(filepath.Join(outside, "workflows"), filepath.Join(dir, ".github", "workflows"))
		},
	} {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"governance/policy.yaml": "version: 1\n"})
		if err := mk(dir); err != nil {
			t.Fatal(err)
		}
		requireSymlinkRefused(t, dir, name)
	}
}
