package govern_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/cli"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/keyfixture"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// openRun opens the pipeline for env dev on a governed repository, its
// trail in .groundzero/evidence, handing what it records to record.
func openRun(t *testing.T, dir string, record func([]govern.Event) error) *govern.Run {
	t.Helper()
	r, err := repo.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := trail.OpenDir(r.Abs(".groundzero/evidence"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gr, err := govern.Open(ctx, govern.Config{
		Repo: r, Now: time.Now().UTC(), Env: "dev", Getenv: os.Getenv, Environ: os.Environ(),
		Anchor: func() (*anchor.Index, error) {
			chain, err := signers.Load(r)
			if err != nil {
				return nil, err
			}
			return anchor.Read(ctx, store, trail.VerifyConfig{Registry: chain.Current(), Now: time.Now()}, false)
		},
		Record:   record,
		Artifact: func(string, []byte) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gr.Close)
	return gr
}

// keep is a record function that appends what is recorded to *recorded.
func keep(recorded *[]govern.Event) func([]govern.Event) error {
	return func(evs []govern.Event) error { *recorded = append(*recorded, evs...); return nil }
}

// readIntent reads the intent file at rel in dir.
func readIntent(t *testing.T, dir, rel string) govern.IntentFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	in, err := intent.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return govern.IntentFile{Intent: in, Data: data, Rel: rel}
}

// gz runs the groundzero command line in dir and returns its stdout.
func gz(t *testing.T, dir string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"-C", dir}, args...), nil, &out, &errb); err != nil {
		t.Fatalf("groundzero %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// governedRepo makes a governed repository with one signer, alice, who
// holds every role and signs everything; the configuration has one
// terraform_data resource. It returns the directory and alice's KEYSPEC.
func governedRepo(t *testing.T) (dir, key string) {
	t.Helper()
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	for k, v := range map[string]string{
		"HOME": home, "GIT_CONFIG_NOSYSTEM": "1", "GROUNDZERO_TF_BINARY": tofu, "TF_CLI_CONFIG_FILE": "/dev/null",
		"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.test", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.test",
		"GROUNDZERO_KEY": "", "GROUNDZERO_TRUST_ROOT": "", "GROUNDZERO_EVIDENCE_STORE": "",
	} {
		t.Setenv(k, v)
	}
	g := keyfixture.NewGPG(t)
	for _, kv := range g.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	fpr, pub := g.Generate(t, "alice", "alice@example.test", keyfixture.KeyOpts{})
	key = "gpg:" + fpr
	dir = filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(filepath.Join(dir, "infra", "bootstrap"), 0o755)
	run(t, dir, "git", "init", "-q")
	os.WriteFile(filepath.Join(home, "alice.asc"), pub, 0o644)
	gz(t, dir, "init")
	signersFile := filepath.Join(dir, "governance", "signers.yaml")
	data, _ := os.ReadFile(signersFile)
	os.WriteFile(signersFile, bytes.Replace(data, []byte("threshold: 2\n"), []byte("threshold: 1\n"), 1), 0o644)
	gz(t, dir, "signers", "add", "--id", "alice", "--role", "security,release,approver,operator", "--key", filepath.Join(home, "alice.asc"))
	gz(t, dir, "signers", "sign", "--key", key)
	os.WriteFile(filepath.Join(dir, "infra", "bootstrap", "main.tf"), []byte("resource \"terraform_data\" \"approved\" {\n  input = { name = \"approved\" }\n}\n"), 0o644)
	gz(t, dir, "manifest", "update")
	gz(t, dir, "manifest", "sign", "--key", key)
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "commit", "-qm", "governed")
	return dir, key
}

// T30: the plan that was hashed and approved is the plan that is applied,
// even when the file it came from is swapped while the operator confirms.
func TestApplyUsesTheCheckedBytes(t *testing.T) {
	dir, key := governedRepo(t)
	tofu := os.Getenv("GROUNDZERO_TF_BINARY")
	gz(t, dir, "plan", "--env", "dev")
	planFile := filepath.Join(dir, ".groundzero", "plans", "dev.tfplan")
	intentRel := strings.TrimSpace(gz(t, dir, "intent", "new", "--env", "dev", "--action", "apply", "--reason", "r", "--plan", planFile, "--key", key))

	// Another plan, of a configuration nobody approved.
	evil := t.TempDir()
	os.WriteFile(filepath.Join(evil, "main.tf"), []byte("resource \"terraform_data\" \"evil\" {\n  input = { name = \"evil\" }\n}\n"), 0o644)
	run(t, evil, tofu, "init", "-input=false", "-no-color")
	run(t, evil, tofu, "plan", "-input=false", "-no-color", "-out=evil.tfplan")
	evilPlan, err := os.ReadFile(filepath.Join(evil, "evil.tfplan"))
	if err != nil {
		t.Fatal(err)
	}

	var recorded []govern.Event
	gr := openRun(t, dir, keep(&recorded))
	ctx := context.Background()
	if ok, err := gr.Static(ctx, false, "dev"); !ok || err != nil {
		t.Fatalf("Static = %v, %v: %+v", ok, err, gr.Results)
	}
	in := readIntent(t, dir, intentRel)
	approved := ""
	done, err := gr.Apply(ctx, govern.ApplyRequest{
		Intent: in,
		Plan:   planFile,
		Confirm: func(summary, token string) error {
			approved = summary
			// The swap, while the operator reads the summary.
			return os.WriteFile(planFile, evilPlan, 0o644)
		},
	})
	if err != nil || done == nil || done.Err != nil {
		t.Fatalf("Apply = %+v, %v; results %+v", done, err, gr.Results)
	}
	if !strings.Contains(approved, done.Plan.SHA256) || done.Plan.SHA256 != in.Intent.PlanSHA256 {
		t.Errorf("Apply applied plan sha256:%s, the intent approved %s and the operator saw %q", done.Plan.SHA256, in.Intent.PlanSHA256, approved)
	}
	state, err := os.ReadFile(filepath.Join(dir, "infra", "bootstrap", "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(state, []byte(`"approved"`)) || bytes.Contains(state, []byte(`"evil"`)) {
		t.Errorf("state after apply = %s, want the approved resource and not the swapped-in one", state)
	}
	consumed := false
	for _, ev := range recorded {
		if ev.Action == "intent.consumed" && ev.Details["plan_sha256"] == in.Intent.PlanSHA256 && ev.Details["engine_sha256"] != nil {
			consumed = true
		}
	}
	if !consumed {
		t.Errorf("recorded %+v, want intent.consumed with the approved plan's hash and the engine's", recorded)
	}
}

// T30: a policy.yaml swapped after the gates read it and back before the
// manifest gate hashes it is caught: the bytes parsed are the bytes listed.
func TestPolicySwappedDuringCheck(t *testing.T) {
	dir, _ := governedRepo(t)
	r, err := repo.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Abs(repo.PolicyFile)
	good, _ := os.ReadFile(p)
	evil := bytes.Replace(good, []byte("require_tag: false"), []byte("require_tag: false # swapped"), 1)
	if bytes.Equal(evil, good) {
		t.Fatal("the policy template changed; the test edits nothing")
	}
	os.WriteFile(p, evil, 0o644)
	env := gate.Load(r, time.Now().UTC(), "", false, nil, nil)
	os.WriteFile(p, good, 0o644)
	res := env.ManifestGate(context.Background())
	if res.OK || !strings.Contains(res.Detail, "governance/policy.yaml changed while it was being checked") {
		t.Errorf("ManifestGate after a swap = %+v, want a failure naming governance/policy.yaml", res)
	}
	// Without the swap, it passes.
	if res := gate.Load(r, time.Now().UTC(), "", false, nil, nil).ManifestGate(context.Background()); !res.OK {
		t.Errorf("ManifestGate = %+v, want a pass", res)
	}
}
