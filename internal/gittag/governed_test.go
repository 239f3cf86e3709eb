package gittag_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/repo"
)

// history builds a repository commit by commit with real git.
type history struct {
	t   *testing.T
	dir string
}

func newHistory(t *testing.T, format string) *history {
	h := &history{t: t, dir: gitInit(t, format)}
	h.commit("governed", map[string]string{"governance/policy.yaml": "v: 1\n", "infra/bootstrap/main.tf": "# main\n"})
	return h
}

func (h *history) run(args ...string) string {
	h.t.Helper()
	out, err := git(h.t, h.dir, nil, append([]string{"-c", "user.name=A", "-c", "user.email=a@example.test"}, args...)...)
	if err != nil {
		h.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// commit writes files ("" removes one) and commits them; it returns the
// new commit's id.
func (h *history) commit(msg string, files map[string]string) string {
	h.t.Helper()
	for rel, data := range files {
		p := filepath.Join(h.dir, filepath.FromSlash(rel))
		if data == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	h.run("add", "-A")
	h.run("commit", "-q", "--allow-empty", "-m", msg)
	return h.run("rev-parse", "HEAD")
}

func (h *history) governed() (string, int, error) {
	h.t.Helper()
	return gittag.Governed(context.Background(), &repo.Repo{Root: h.dir})
}

func (h *history) want(name, commit string, extra int) {
	h.t.Helper()
	got, n, err := h.governed()
	if err != nil || got != commit || n != extra {
		h.t.Errorf("%s: Governed = %.12s, %d, %v, want %.12s, %d", name, got, n, err, commit, extra)
	}
}

const intentPath = "governance/intents/20261129T100000Z-0a1b2c3d.json"

func TestGovernedSkipsRecordsOnlyCommits(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			h := newHistory(t, format)
			base := h.run("rev-parse", "HEAD")
			h.want("HEAD itself", base, 0)
			h.commit("an intent", map[string]string{intentPath: "{}\n"})
			h.want("one intent", base, 1)
			h.commit("its signatures", map[string]string{intentPath + ".asc": "sig\n", "governance/intents/odd name\nwith newline.json": "{}\n"})
			h.commit("a revocation", map[string]string{"governance/revocations/r1.json": "{}\n"})
			h.commit("nothing", nil)
			h.want("records, an odd name and an empty commit", base, 4)
			h.commit("an intent withdrawn", map[string]string{intentPath: ""})
			h.want("a record removed", base, 5)
		})
	}
}

// The attacks: anything but a records-only commit after the governed
// commit moves it, so approvals made for the old content stop verifying.
func TestGovernedMovesOnAnyOtherChange(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"a governed file and an intent":         {"infra/bootstrap/main.tf": "# changed\n", intentPath: "{}\n"},
		"a new file in the configuration":       {"infra/bootstrap/x.tf": "# new\n"},
		"a file outside governance":             {"README.md": "hello\n"},
		"a manifest signature":                  {"governance/MANIFEST.asc": "sig\n"},
		"a path beside the intents directory":   {"governance/intents.json": "{}\n"},
		"a governed file removed, intent added": {"governance/policy.yaml": "", intentPath: "{}\n"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHistory(t, "sha1")
			h.commit("an intent", map[string]string{intentPath: "{}\n"})
			moved := h.commit("the change", files)
			h.want(name, moved, 0)
			h.commit("a later intent", map[string]string{"governance/intents/later.json": "{}\n"})
			h.want(name+", then an intent", moved, 1)
		})
	}
}

// A governed file moved into the intents directory is a deletion of a
// governed file, not a records-only change.
func TestGovernedRenameOutOfTheGovernedTree(t *testing.T) {
	h := newHistory(t, "sha1")
	os.MkdirAll(filepath.Join(h.dir, "governance", "intents"), 0o755)
	h.run("mv", "governance/policy.yaml", "governance/intents/policy.yaml")
	h.run("commit", "-q", "-m", "move")
	h.want("rename into the intents directory", h.run("rev-parse", "HEAD"), 0)
}

// A merge commit is judged against its first parent: one that brings in a
// governed change from its second parent moves the governed commit, one
// that brings in only records does not; and the second parent's own
// commits are never walked.
func TestGovernedMerge(t *testing.T) {
	h := newHistory(t, "sha1")
	h.run("checkout", "-q", "-b", "side")
	h.commit("governed change on a side branch", map[string]string{"infra/bootstrap/main.tf": "# side\n"})
	h.commit("records on the side branch", map[string]string{"governance/intents/side.json": "{}\n"})
	h.run("checkout", "-q", "-")
	h.commit("an intent on main", map[string]string{intentPath: "{}\n"})
	h.run("merge", "-q", "--no-ff", "-m", "merge side", "side")
	merge := h.run("rev-parse", "HEAD")
	h.want("merge bringing a governed change", merge, 0)
	h.commit("an intent after the merge", map[string]string{"governance/intents/after.json": "{}\n"})
	h.want("records after the merge", merge, 1)

	// A merge that brings in only records (an approval made on a branch)
	// leaves the governed commit where it was.
	h2 := newHistory(t, "sha1")
	base := h2.run("rev-parse", "HEAD")
	h2.run("checkout", "-q", "-b", "side")
	h2.commit("records only", map[string]string{"governance/intents/side.json": "{}\n"})
	h2.run("checkout", "-q", "-")
	h2.commit("an intent on main", map[string]string{intentPath: "{}\n"})
	h2.run("merge", "-q", "--no-ff", "-m", "merge records", "side")
	h2.want("merge bringing records only", base, 2)

	// A governed change made on the second parent and undone there too
	// leaves the tree as it was: only the content counts.
	h3 := newHistory(t, "sha1")
	base3 := h3.run("rev-parse", "HEAD")
	h3.run("checkout", "-q", "-b", "side")
	h3.commit("change", map[string]string{"infra/bootstrap/main.tf": "# changed\n"})
	h3.commit("undo", map[string]string{"infra/bootstrap/main.tf": "# main\n"})
	h3.run("checkout", "-q", "-")
	h3.run("merge", "-q", "--no-ff", "-m", "merge nothing", "side")
	h3.want("merge bringing no net change", base3, 1)

	// The merge is judged against its first parent: merging main into a
	// branch that carries a governed change is a governed change.
	h4 := newHistory(t, "sha1")
	trunk := h4.run("rev-parse", "--abbrev-ref", "HEAD")
	h4.run("checkout", "-q", "-b", "side")
	h4.commit("records on side", map[string]string{"governance/intents/side.json": "{}\n"})
	h4.run("checkout", "-q", trunk)
	changed := h4.commit("governed change on the trunk", map[string]string{"infra/bootstrap/main.tf": "# main 2\n"})
	h4.run("checkout", "-q", "side")
	h4.run("merge", "-q", "--no-ff", "-m", "merge the trunk into side", trunk)
	h4.want("first parent without the change", h4.run("rev-parse", "HEAD"), 0)
	h4.run("checkout", "-q", trunk)
	h4.want("trunk", changed, 0)
}

func TestGovernedBound(t *testing.T) {
	h := newHistory(t, "sha1")
	base := h.run("rev-parse", "HEAD")
	h.commit("r1", map[string]string{"governance/intents/1.json": "{}\n"})
	h.commit("r2", map[string]string{"governance/intents/2.json": "{}\n"})
	r := &repo.Repo{Root: h.dir}
	if got, n, err := gittag.GovernedWithin(context.Background(), r, 2); err != nil || got != base || n != 2 {
		t.Errorf("GovernedWithin(2) over 2 records-only commits = %.12s, %d, %v, want %.12s, 2", got, n, err, base)
	}
	h.commit("r3", map[string]string{"governance/intents/3.json": "{}\n"})
	var we *gittag.WalkError
	if _, _, err := gittag.GovernedWithin(context.Background(), r, 2); !errors.As(err, &we) || !strings.Contains(err.Error(), "more than 2 commits") {
		t.Errorf("GovernedWithin(2) over 3 records-only commits = %v, want a *WalkError", err)
	}
	// The root commit ends the walk: a history of records only is bound to
	// its first commit.
	root := gitInit(t, "sha1")
	h3 := &history{t: t, dir: root}
	first := h3.commit("records only from the start", map[string]string{intentPath: "{}\n"})
	h3.commit("more", map[string]string{"governance/intents/x.json": "{}\n"})
	h3.want("root", first, 1)
}

func TestGovernedNoCommit(t *testing.T) {
	dir := gitInit(t, "sha1")
	if _, _, err := gittag.Governed(context.Background(), &repo.Repo{Root: dir}); err == nil {
		t.Error("Governed in a repository without commits = nil error")
	}
}
