package ciwork_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/groundzero/groundzero/internal/ciwork"
	"github.com/groundzero/groundzero/internal/pinned"
)

func config(provider string) ciwork.Config {
	return ciwork.Config{Provider: provider, Env: "prod", Version: "v1.2.0",
		TofuVersion: ciwork.DefaultTofuVersion, GoVersion: ciwork.DefaultGoVersion}
}

func render(t *testing.T, provider string) []byte {
	t.Helper()
	out, err := ciwork.Render(config(provider))
	if err != nil {
		t.Fatalf("Render(%s) = %v", provider, err)
	}
	return out
}

// root is the repository root, where action.yml and ci/ live.
func root(t *testing.T) string {
	t.Helper()
	dir, err := pinned.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(dir))
}

func TestDeterministic(t *testing.T) {
	for _, p := range ciwork.Providers {
		if a, b := render(t, p), render(t, p); !bytes.Equal(a, b) {
			t.Errorf("Render(%s) differs between two calls", p)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	for name, mod := range map[string]func(*ciwork.Config){
		"provider":       func(c *ciwork.Config) { c.Provider = "jenkins" },
		"env injection":  func(c *ciwork.Config) { c.Env = "prod\n  evil: x" },
		"env empty":      func(c *ciwork.Config) { c.Env = "" },
		"version":        func(c *ciwork.Config) { c.Version = "latest" },
		"version short":  func(c *ciwork.Config) { c.Version = "v1.2" },
		"version quote":  func(c *ciwork.Config) { c.Version = `v1.2.0"` },
		"tofu version":   func(c *ciwork.Config) { c.TofuVersion = "" },
		"go version":     func(c *ciwork.Config) { c.GoVersion = "stable" },
		"go version yml": func(c *ciwork.Config) { c.GoVersion = "1.26\"\n" },
	} {
		c := config("github")
		mod(&c)
		if _, err := ciwork.Render(c); err == nil {
			t.Errorf("Render with bad %s: no error", name)
		}
	}
}

func TestDefaultTofuVersionIsPinned(t *testing.T) {
	if ciwork.DefaultTofuVersion != pinned.TofuVersion {
		t.Errorf("DefaultTofuVersion = %s, want %s", ciwork.DefaultTofuVersion, pinned.TofuVersion)
	}
}

// Every third-party action is pinned by a full commit SHA.
func TestActionsPinned(t *testing.T) {
	for _, a := range ciwork.Actions {
		if len(a.SHA) != 40 || strings.Trim(a.SHA, "0123456789abcdef") != "" {
			t.Errorf("%s is pinned to %q, not a full commit SHA", a.Repo, a.SHA)
		}
	}
	action, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"workflow": string(render(t, "github")), "action.yml": string(action)} {
		for _, line := range strings.Split(text, "\n") {
			_, uses, ok := strings.Cut(line, "uses: ")
			if !ok {
				continue
			}
			ref, _, _ := strings.Cut(uses, " ")
			found := false
			for _, a := range ciwork.Actions {
				found = found || ref == a.Uses()
			}
			if !found {
				t.Errorf("%s uses %s, which is not one of the pinned actions", name, ref)
			}
		}
	}
}

type step struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	If   string            `yaml:"if"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

type ghJob struct {
	If          string            `yaml:"if"`
	Needs       any               `yaml:"needs"`
	Environment string            `yaml:"environment"`
	Permissions map[string]string `yaml:"permissions"`
	Steps       []step            `yaml:"steps"`
}

type workflow struct {
	On   map[string]any    `yaml:"on"`
	Env  map[string]string `yaml:"env"`
	Jobs map[string]ghJob  `yaml:"jobs"`
}

func runs(s []step) string {
	var b strings.Builder
	for _, st := range s {
		b.WriteString(st.Run)
		b.WriteString("\n")
	}
	return b.String()
}

func TestGitHubWorkflow(t *testing.T) {
	var w workflow
	if err := yaml.Unmarshal(render(t, "github"), &w); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.On["pull_request"]; !ok {
		t.Error("workflow does not run on pull_request")
	}
	push, _ := w.On["push"].(map[string]any)
	if push == nil || push["branches"] == nil || push["tags"] == nil {
		t.Errorf("workflow push trigger = %v, want branches and tags", w.On["push"])
	}
	if w.Env["GROUNDZERO_TRUST_ROOT"] != "${{ vars.GROUNDZERO_TRUST_ROOT }}" ||
		w.Env["GROUNDZERO_EVIDENCE_STORE"] != "${{ vars.GROUNDZERO_EVIDENCE_STORE }}" ||
		w.Env["GROUNDZERO_VERSION"] != "v1.2.0" {
		t.Errorf("workflow env = %v", w.Env)
	}

	check := w.Jobs["check"]
	if check.If != "" {
		t.Errorf("check runs only if %q, want always", check.If)
	}
	if !strings.Contains(runs(check.Steps), "groundzero check --strict --format sarif") ||
		!strings.Contains(runs(check.Steps), "groundzero check --strict\n") {
		t.Errorf("check job runs:\n%s\nwant a SARIF run and a text run", runs(check.Steps))
	}
	uploaded := false
	for _, s := range check.Steps {
		uploaded = uploaded || (s.Uses == ciwork.UploadSARIF.Uses() && s.With["sarif_file"] == "groundzero.sarif")
	}
	if !uploaded || check.Permissions["security-events"] != "write" {
		t.Error("check job does not upload its SARIF to code scanning")
	}

	for _, name := range []string{"plan", "apply"} {
		j := w.Jobs[name]
		if j.Permissions["id-token"] != "write" || j.Permissions["contents"] != "read" || j.Environment != "prod" {
			t.Errorf("%s job: permissions %v, environment %q; want id-token: write, contents: read, environment prod", name, j.Permissions, j.Environment)
		}
		if !strings.Contains(runs(j.Steps), "groundzero plan --ci --env") {
			t.Errorf("%s job does not plan with --ci", name)
		}
	}
	apply := w.Jobs["apply"]
	if apply.If != "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')" {
		t.Errorf("apply job runs if %q, want only on v* tags", apply.If)
	}
	if !strings.Contains(runs(apply.Steps), `groundzero apply --ci --env "$GROUNDZERO_ENV" --intent "$INTENT"`) {
		t.Errorf("apply job does not apply the tag's intent:\n%s", runs(apply.Steps))
	}
	if strings.Contains(runs(w.Jobs["check"].Steps), "GROUNDZERO_CHECKPOINT_KEY") {
		t.Error("the check job reads the checkpoint key")
	}
}

// The workflow installs groundzero exactly as action.yml does.
func TestActionInstallsLikeWorkflow(t *testing.T) {
	var w workflow
	if err := yaml.Unmarshal(render(t, "github"), &w); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]struct {
			Required bool   `yaml:"required"`
			Default  string `yaml:"default"`
		} `yaml:"inputs"`
		Runs struct {
			Using string `yaml:"using"`
			Steps []step `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" {
		t.Errorf("action.yml runs.using = %q, want composite", action.Runs.Using)
	}
	for _, in := range []string{"version", "command"} {
		if !action.Inputs[in].Required {
			t.Errorf("action.yml input %s is not required", in)
		}
	}
	if action.Inputs["go-version"].Default != ciwork.DefaultGoVersion {
		t.Errorf("action.yml go-version default = %q, want %q", action.Inputs["go-version"].Default, ciwork.DefaultGoVersion)
	}
	install := func(steps []step) string {
		for _, s := range steps {
			if s.Name == "Install groundzero" {
				return s.Run
			}
		}
		return ""
	}
	if got := install(action.Runs.Steps); got != ciwork.InstallScript {
		t.Errorf("action.yml installs with\n%s\nwant\n%s", got, ciwork.InstallScript)
	}
	for name, j := range w.Jobs {
		if got := install(j.Steps); got != ciwork.InstallScript {
			t.Errorf("workflow job %s installs with\n%s\nwant\n%s", name, got, ciwork.InstallScript)
		}
	}
}

// The GitLab template the repository ships is the one init embeds.
func TestShippedGitLabTemplate(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(root(t), "ci", "gitlab", "groundzero.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(shipped) != ciwork.GitLabTemplate {
		t.Error("ci/gitlab/groundzero.gitlab-ci.yml differs from internal/ciwork/templates/groundzero.gitlab-ci.yml")
	}
	if !bytes.Contains(render(t, "gitlab"), shipped) {
		t.Error("the rendered .gitlab-ci.yml does not carry the shipped template verbatim")
	}
}

type glJob struct {
	Extends     string `yaml:"extends"`
	Stage       string `yaml:"stage"`
	Image       string `yaml:"image"`
	Include     any    `yaml:"include"`
	Environment *struct {
		Name string `yaml:"name"`
	} `yaml:"environment"`
	IDTokens map[string]struct {
		Aud string `yaml:"aud"`
	} `yaml:"id_tokens"`
	Rules []struct {
		If string `yaml:"if"`
	} `yaml:"rules"`
	Script       []string `yaml:"script"`
	BeforeScript []string `yaml:"before_script"`
	Artifacts    *struct {
		When    string            `yaml:"when"`
		Reports map[string]string `yaml:"reports"`
	} `yaml:"artifacts"`
}

// resolve merges a job with the jobs it extends, nearest first, the way
// GitLab does for the keys the test reads.
func resolve(t *testing.T, jobs map[string]glJob, name string) glJob {
	t.Helper()
	j, ok := jobs[name]
	if !ok {
		t.Fatalf("no job %s", name)
	}
	if j.Extends == "" {
		return j
	}
	base := resolve(t, jobs, j.Extends)
	if j.Stage == "" {
		j.Stage = base.Stage
	}
	if j.Image == "" {
		j.Image = base.Image
	}
	if j.Environment == nil {
		j.Environment = base.Environment
	}
	if j.IDTokens == nil {
		j.IDTokens = base.IDTokens
	}
	if j.Rules == nil {
		j.Rules = base.Rules
	}
	if j.Script == nil {
		j.Script = base.Script
	}
	if j.BeforeScript == nil {
		j.BeforeScript = base.BeforeScript
	}
	if j.Artifacts == nil {
		j.Artifacts = base.Artifacts
	}
	return j
}

func TestGitLabPipeline(t *testing.T) {
	data := render(t, "gitlab")
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["include"]; ok {
		t.Error(".gitlab-ci.yml includes another file")
	}
	vars, _ := top["variables"].(map[string]any)
	if vars["GROUNDZERO_VERSION"] != "v1.2.0" || vars["GROUNDZERO_ENV"] != "prod" || vars["GROUNDZERO_TOFU_VERSION"] != ciwork.DefaultTofuVersion {
		t.Errorf("variables = %v", vars)
	}
	var jobs map[string]glJob
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	jobs = map[string]glJob{}
	for name, n := range raw {
		if name == "variables" || name == "stages" {
			continue
		}
		var j glJob
		if err := n.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		jobs[name] = j
	}
	for _, name := range []string{"groundzero-check", "groundzero-plan", "groundzero-apply"} {
		if j := resolve(t, jobs, name); j.Image == "" || len(j.BeforeScript) == 0 || len(j.Script) == 0 {
			t.Errorf("job %s has no image, before_script or script", name)
		}
	}

	check := resolve(t, jobs, "groundzero-check")
	if check.Rules != nil {
		t.Errorf("check job has rules %v, want every pipeline", check.Rules)
	}
	script := strings.Join(check.Script, "\n")
	if !strings.Contains(script, "--format junit >groundzero-junit.xml") || !strings.Contains(script, "groundzero check --strict") {
		t.Errorf("check job script:\n%s", script)
	}
	if check.Artifacts == nil || check.Artifacts.Reports["junit"] != "groundzero-junit.xml" || check.Artifacts.When != "always" {
		t.Errorf("check job artifacts = %+v, want reports: junit: groundzero-junit.xml, when always", check.Artifacts)
	}
	if check.IDTokens != nil {
		t.Error("check job asks for an ID token")
	}

	for _, name := range []string{"groundzero-plan", "groundzero-apply"} {
		j := resolve(t, jobs, name)
		if j.IDTokens["GROUNDZERO_ID_TOKEN"].Aud != "groundzero" {
			t.Errorf("%s id_tokens = %v, want GROUNDZERO_ID_TOKEN with aud groundzero", name, j.IDTokens)
		}
		if j.Environment == nil || j.Environment.Name != "$GROUNDZERO_ENV" {
			t.Errorf("%s has no environment", name)
		}
	}
	apply := resolve(t, jobs, "groundzero-apply")
	if len(apply.Rules) != 1 || apply.Rules[0].If != "$CI_COMMIT_TAG =~ /^v/" {
		t.Errorf("apply rules = %v, want only v* tags", apply.Rules)
	}
	if s := strings.Join(apply.Script, "\n"); !strings.Contains(s, `groundzero apply --ci --env "$GROUNDZERO_ENV" --intent "$intent"`) {
		t.Errorf("apply script:\n%s", s)
	}
	if stages, _ := top["stages"].([]any); len(stages) != 3 {
		t.Errorf("stages = %v", top["stages"])
	}
	for name, j := range jobs {
		if j.Stage != "" && !strings.Contains(string(data), "  - "+j.Stage+"\n") {
			t.Errorf("job %s is in stage %s, which stages does not list", name, j.Stage)
		}
	}
}

// actionlint accepts the rendered workflow and action.yml.
func TestActionlint(t *testing.T) {
	bin, err := pinned.Path("actionlint")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wf := filepath.Join(dir, ".github", "workflows", "groundzero.yml")
	if err := os.MkdirAll(filepath.Dir(wf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wf, render(t, "github"), 0o644); err != nil {
		t.Fatal(err)
	}
	action, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// A workflow that uses the action locally makes actionlint check action.yml.
	if err := os.WriteFile(filepath.Join(dir, "action.yml"), action, 0o644); err != nil {
		t.Fatal(err)
	}
	use := "on: push\njobs:\n  run:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: " + ciwork.Checkout.Uses() +
		"\n      - uses: ./\n        with:\n          version: v1.2.0\n          command: check --strict\n"
	if err := os.WriteFile(filepath.Join(dir, ".github", "workflows", "use.yml"), []byte(use), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "init", "-q", dir).Run(); err != nil {
		t.Fatalf("git init: %v", err)
	}
	cmd := exec.Command(bin, "-no-color", "-shellcheck=", "-pyflakes=")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}

	// And it does report a broken action input, so a pass means something.
	bad := strings.Replace(use, "version: v1.2.0", "versoin: v1.2.0", 1)
	if err := os.WriteFile(filepath.Join(dir, ".github", "workflows", "use.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "-no-color", "-shellcheck=", "-pyflakes=")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "versoin") {
		t.Fatalf("actionlint on a misspelt input: %v\n%s", err, out)
	}
}
