// Package govern is the gate pipeline, defined once. A governed command opens
// a Run over the repository and the freshness anchor, and runs the gates of
// DESIGN §3 in their order, each result kept for the audit trail:
//
//	policy    governance/policy.yaml is usable
//	anchor    the authoritative evidence store was read and verifies
//	signers   the registry chain verifies from the pin, and is not rolled back
//	manifest  every governed file matches the signed MANIFEST, not rolled back
//	secrets   no governed file holds a credential that policy.yaml does not waive
//	tag       HEAD is a signed release tag (when policy.yaml requires one)
//	backend   the backend is the one the signed lock records, and backend.tf
//	          renders byte-identically from its template
//	ci        the runner's OIDC ID token verifies against policy.yaml's ci
//	          section (plan and apply with --ci)
//	engine    what OpenTofu runs is governed or pinned outside the repository:
//	          the binary, the configuration directory, its modules, the
//	          provider lock, the environment and working directory
//	intent    a signed intent for this environment, action, commit and plan
//	parity    the configuration meets the parity policy
//	plan      the saved plan meets it
//	confirm   a person typed the token and APPLY (or policy turned it off);
//	          in CI, the approved intent and the verified runner instead
//
// Check, Plan and Apply compose these steps; bootstrap, break-glass and CI
// applies add only their own. The caller supplies the I/O that is not the
// pipeline's: reading the anchor, recording events, and confirming on a
// terminal.
package govern

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/ciauth"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/strictyaml"
	"github.com/groundzero/groundzero/internal/tfconfig"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// UsageError is a problem with what the command was given (a flag, a file,
// the environment), not a failed gate: the CLI exits 2.
type UsageError struct {
	Err  error
	Hint string
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(err error, hint string) error { return &UsageError{Err: err, Hint: hint} }

// Event is one audit record the pipeline asks the caller to keep.
type Event struct {
	Action  string
	Subject string
	Details map[string]any
}

// Config is what a governed command runs on.
type Config struct {
	Repo      *repo.Repo
	Now       time.Time
	TrustRoot string
	Strict    bool
	Env       string // environment; "" is the only one declared
	Dir       string // configuration directory as given (--dir); "" is the environment's
	TFBinary  string // --tf-binary
	Getenv    func(string) string
	Environ   []string // base environment for OpenTofu; tfrun filters it
	// Anchor reads the freshness anchor. A *UsageError from it stops the
	// command; any other error fails the anchor gate.
	Anchor func() (*anchor.Index, error)
	// Record keeps events durably (the audit trail). The pipeline calls it
	// where an event must be kept before anything changes.
	Record func(events []Event) error
	// Artifact keeps a piece of evidence (an apply log) once, by name.
	Artifact func(name string, data []byte) error
	// Stderr receives OpenTofu's progress.
	Stderr io.Writer
}

// Run is one governed command in progress.
type Run struct {
	cfg     Config
	Policy  *policy.Policy
	EnvName string
	Gates   *gate.Env
	Results []gate.Result
	// CI is the runner's identity once the ci gate verified it.
	CI *ciauth.Identity

	dir    string // absolute configuration directory
	dirRel string // repository-relative
	tf     *tfrun.Runner
	engine *tfrun.Engine
	lock   string // SHA-256 of .terraform.lock.hcl, "" when absent
	parity *parity.Engine
	events []Event
	envErr error
	taken  int // results already handed out as events
	// seenTaken: the versions in force were handed out
	seenTaken bool
	clean     []func()
}

// Open loads the policy and the environment. An undeclared environment is a
// *UsageError; a policy that does not load is left for the policy gate to
// report, and so is a missing --env where policy.yaml declares several
// environments, for the steps that need one (NeedEnv).
func Open(ctx context.Context, cfg Config) (*Run, error) {
	r := &Run{cfg: cfg}
	pol, err := LoadPolicy(cfg.Repo)
	if err != nil {
		return r, nil
	}
	r.Policy = pol
	if cfg.Env == "" && len(pol.Environments) > 1 {
		r.envErr = usage(errors.New("--env is required: policy.yaml declares several environments"), "")
		return r, nil
	}
	if r.EnvName, err = ResolveEnv(pol, cfg.Env); err != nil {
		return nil, err
	}
	return r, nil
}

// NeedEnv returns why the run has no environment (no usable policy, or
// several environments and no --env), or nil.
func (r *Run) NeedEnv() error {
	if r.Policy == nil {
		_, err := LoadPolicy(r.cfg.Repo)
		return err
	}
	return r.envErr
}

// Close removes the run's private files.
func (r *Run) Close() {
	for i := len(r.clean) - 1; i >= 0; i-- {
		r.clean[i]()
	}
	r.clean = nil
}

// Failed reports whether any gate so far failed.
func (r *Run) Failed() bool {
	for _, res := range r.Results {
		if !res.OK {
			return true
		}
	}
	return false
}

func (r *Run) add(res gate.Result) bool {
	r.Results = append(r.Results, res)
	return res.OK
}

// Note adds an event to be recorded with the gate results.
func (r *Run) Note(action, subject string, details map[string]any) {
	r.events = append(r.events, Event{Action: action, Subject: subject, Details: details})
}

// Events are the records of the run so far: each gate result, what else the
// steps noted, and the registry and governed-state versions now in force
// when the anchor does not hold them yet. Each is handed out once.
func (r *Run) Events() []Event {
	var out []Event
	for _, res := range r.Results[r.taken:] {
		d := map[string]any{"ok": res.OK, "detail": res.Detail}
		if r.EnvName != "" {
			d["env"] = r.EnvName
		}
		out = append(out, Event{Action: "gate", Subject: res.Name, Details: d})
	}
	r.taken = len(r.Results)
	out = append(out, r.events...)
	r.events = nil
	if r.Gates != nil && !r.seenTaken {
		out = append(out, Seen(r.Gates)...)
		r.seenTaken = true
	}
	return out
}

// Seen returns the records of the registry and governed-state versions in
// force, when they verified and the anchor does not hold them yet.
func Seen(env *gate.Env) []Event {
	ix := env.Anchor
	if ix == nil || !ix.Report.OK() {
		return nil
	}
	var out []Event
	if env.Trusted && (ix.Registry == nil || env.Report.Version != ix.Registry.Version) {
		out = append(out, Event{anchor.RegistrySeen, repo.SignersFile, map[string]any{"version": env.Report.Version, "sha256": env.Report.Hash}})
	}
	if m := env.Manifest; m != nil && (ix.Manifest == nil || m.Version != ix.Manifest.Version) {
		out = append(out, Event{anchor.ManifestSeen, repo.ManifestFile, map[string]any{"version": m.Version, "sha256": sha256hex(env.ManifestRaw)}})
	}
	return out
}

// Static runs the gates that need neither OpenTofu nor a cloud: policy,
// anchor, signers, manifest, secrets, and the tag when it is required (or
// requireTag). It returns false when one failed.
func (r *Run) Static(ctx context.Context, requireTag bool, envs ...string) (bool, error) {
	ix, err := r.cfg.Anchor()
	var ue *UsageError
	if errors.As(err, &ue) {
		return false, ue
	}
	r.Gates = gate.Load(r.cfg.Repo, r.cfg.Now, r.cfg.TrustRoot, r.cfg.Strict, ix, err)
	g := r.Gates
	g.StorePinned = r.cfg.Getenv("GROUNDZERO_EVIDENCE_STORE") != ""
	if g.Policy != nil && r.Policy != nil {
		// From here on, the policy the manifest gate checks is the one used.
		r.Policy = g.Policy
	}
	r.add(g.PolicyGate())
	r.add(g.AnchorGate(envs...))
	r.add(g.SignersGate())
	r.add(g.ManifestGate(ctx))
	r.add(g.SecretsGate(ctx))
	if g.TagRequired(requireTag) {
		r.add(g.TagGate(ctx, "HEAD"))
	}
	if g.Policy != nil {
		for _, env := range r.backendEnvs() {
			r.add(g.BackendGate(env.Name, env.Dir))
		}
	}
	return !r.Failed(), nil
}

// backendEnvs are the environments whose backend gate runs: the one the
// command acts on, or every declared one.
func (r *Run) backendEnvs() []policy.Environment {
	if r.EnvName != "" {
		if e := r.Gates.Policy.Environment(r.EnvName); e != nil {
			return []policy.Environment{*e}
		}
	}
	return r.Gates.Policy.Environments
}

// Check is what `groundzero check` runs: the static gates, then the parity
// policy on the environment's configuration when there is one.
func (r *Run) Check(ctx context.Context, requireTag bool, envs ...string) error {
	if _, err := r.Static(ctx, requireTag, envs...); err != nil {
		return err
	}
	if r.Gates.Policy == nil || r.Policy == nil {
		return nil
	}
	envDir := policy.DefaultDir
	if r.EnvName != "" {
		envDir = r.Policy.Environment(r.EnvName).Dir
	}
	dir := r.cfg.Repo.Abs(envDir)
	if primary, _, err := parity.ConfigFiles(dir); err != nil || len(primary) == 0 {
		return nil
	}
	if r.envErr != nil {
		return r.envErr
	}
	r.dir = dir
	_, err := r.ConfigParity(ctx)
	return err
}

// ConfigParity checks the configuration against the parity policy.
func (r *Run) ConfigParity(ctx context.Context) (bool, error) {
	if err := r.loadParity(ctx); err != nil {
		return false, err
	}
	in, err := parity.FromConfig(r.dir)
	if err != nil {
		return r.add(gate.Result{Name: "parity", Detail: err.Error(), Hint: "fix the configuration as the error says; OpenTofu would refuse it too", Config: true}), nil
	}
	res, _, err := r.ParityGate(ctx, "parity", in)
	if err != nil {
		return false, err
	}
	return r.add(res), nil
}

func (r *Run) loadParity(ctx context.Context) error {
	if r.parity != nil {
		return nil
	}
	e, err := ParityEngine(ctx, r.cfg.Repo, r.Policy, r.EnvName)
	if err != nil {
		return err
	}
	r.parity = e
	return nil
}

// ParityGate evaluates the rules and turns the violations into a result.
func (r *Run) ParityGate(ctx context.Context, name string, in *parity.Input) (gate.Result, []parity.Violation, error) {
	if err := r.loadParity(ctx); err != nil {
		return gate.Result{}, nil, err
	}
	vs, err := r.parity.Check(ctx, in)
	if err != nil {
		return gate.Result{}, nil, usage(err, "")
	}
	if len(vs) == 0 {
		return gate.Result{Name: name, OK: true, Detail: fmt.Sprintf("%d resource(s) meet the %s policy of environment %s", len(in.Resources), in.Source, r.EnvName)}, nil, nil
	}
	var lines []string
	for _, v := range vs {
		lines = append(lines, v.String())
	}
	return gate.Result{Name: name, Detail: strings.Join(lines, "; "),
		Hint: "change the configuration to meet governance/policy.yaml (or change the policy through review); `groundzero policy check` lists every violation"}, vs, nil
}

// ParityEngine compiles the built-in and custom rules for env. A custom rule
// that calls a built-in governed policy may not use (network, environment)
// fails the parity gate: it is refused, not a usage error (T36).
func ParityEngine(ctx context.Context, rp *repo.Repo, pol *policy.Policy, env string) (e *parity.Engine, err error) {
	defer func() {
		var fb *parity.ForbiddenBuiltinError
		if errors.As(err, &fb) {
			err = &GateError{gate.Result{Name: "parity", Detail: fb.Error(), Hint: "custom rules decide from input and policy.yaml alone; remove the call"}}
		}
	}()
	mods, err := parity.LoadCustom(rp.Abs(repo.RegoDir))
	if err != nil {
		return nil, usage(err, "")
	}
	custom, err := parity.ParseCustom(mods, func(p string) string {
		rel, err := filepath.Rel(rp.Root, p)
		if err != nil {
			return p
		}
		return filepath.ToSlash(rel)
	})
	if err != nil {
		return nil, usage(err, "fix the Rego file; custom rules use package groundzero.custom and `deny contains msg if { … }`")
	}
	e, err = parity.New(ctx, pol, env, custom)
	if err != nil {
		return nil, usage(err, "")
	}
	return e, nil
}

// LoadPolicy reads policy.yaml; a malformed or oversized policy is a
// *UsageError.
func LoadPolicy(rp *repo.Repo) (*policy.Policy, error) {
	data, err := rp.ReadFile(repo.PolicyFile, strictyaml.MaxSize)
	if err != nil {
		return nil, usage(err, "run `groundzero init`, or restore governance/policy.yaml")
	}
	p, err := policy.Parse(repo.PolicyFile, data)
	if err != nil {
		var pe *policy.InvalidError
		if errors.As(err, &pe) {
			return nil, usage(err, pe.Hint)
		}
		var se *strictyaml.Error
		if errors.As(err, &se) {
			return nil, usage(err, se.Hint)
		}
		return nil, usage(err, "")
	}
	return p, nil
}

// ResolveEnv checks an environment name against the policy; with one
// environment declared it is the default.
func ResolveEnv(p *policy.Policy, name string) (string, error) {
	if name == "" {
		if len(p.Environments) == 1 {
			return p.Environments[0].Name, nil
		}
		return "", usage(errors.New("--env is required: policy.yaml declares several environments"), "")
	}
	if p.Environment(name) == nil {
		var names []string
		for _, e := range p.Environments {
			names = append(names, e.Name)
		}
		return "", usage(fmt.Errorf("environment %q is not declared in %s (declared: %s)", name, repo.PolicyFile, strings.Join(names, ", ")),
			"add it under environments: in governance/policy.yaml")
	}
	return name, nil
}

// Engine checks everything OpenTofu will read or run, and prepares a private
// working directory for it (T29):
//   - the configuration directory is the one policy.yaml declares for the
//     environment, inside the governed tree (--dir may only name it);
//   - the binary comes from --tf-binary, GROUNDZERO_TF_BINARY or PATH, never
//     from inside the repository, and matches policy.yaml's engine pin;
//   - every module the configuration reaches lies in the governed tree, or
//     is a remote source policy.yaml allows at an exact version;
//   - a .terraform/ directory in the repository is ignored (OpenTofu works in
//     a private TF_DATA_DIR) and reported;
//   - the provider lock file, when present, is governed and init keeps it
//     read-only;
//   - OpenTofu's environment is owned: no TF_*, TERRAFORM_CONFIG or CLI
//     configuration from outside.
func (r *Run) Engine(ctx context.Context) (bool, error) {
	const name = "engine"
	fail := func(detail, hint string) (bool, error) {
		return r.add(gate.Result{Name: name, Detail: detail, Hint: hint}), nil
	}
	env := r.Policy.Environment(r.EnvName)
	declared := env.Dir
	if r.cfg.Dir != "" {
		rel, err := r.repoRel(r.cfg.Dir)
		if err != nil {
			return fail(fmt.Sprintf("--dir %s: %v", r.cfg.Dir, err), "run from the repository; --dir names the configuration directory of the environment, as policy.yaml declares it")
		}
		if rel != declared {
			return fail(fmt.Sprintf("--dir %s is not the configuration directory of environment %s (%s declares %s)", rel, r.EnvName, repo.PolicyFile, declared),
				"declare the directory as environments[].dir in governance/policy.yaml through review, or drop --dir")
		}
	}
	if !manifest.IsGoverned(declared + "/main.tf") {
		return fail(fmt.Sprintf("configuration directory %s is outside the governed tree", declared), "put the configuration under infra/bootstrap/, which the manifest covers")
	}
	if err := r.cfg.Repo.NoSymlinks(declared); err != nil {
		return fail(err.Error(), "the configuration directory must be a real directory inside the repository")
	}
	r.dirRel, r.dir = declared, r.cfg.Repo.Abs(declared)
	if fi, err := os.Stat(r.dir); err != nil || !fi.IsDir() {
		return false, usage(fmt.Errorf("no configuration directory %s", declared), "put the configuration in "+declared+", or declare its directory in governance/policy.yaml")
	}
	bin, err := tfrun.Find(r.cfg.TFBinary, r.cfg.Getenv, r.cfg.Repo.Root)
	if err != nil {
		var in *tfrun.InRepoError
		if errors.As(err, &in) {
			return fail(err.Error(), "install OpenTofu outside the repository (or pin it in CI), and pass --tf-binary or GROUNDZERO_TF_BINARY")
		}
		return false, usage(err, "install OpenTofu, or pass --tf-binary")
	}
	// Identify runs and hashes a private copy of the binary; that copy is
	// what runs from here on, so the bytes checked are the bytes run. The
	// copy is kept in the user's cache while neither file changes.
	cache := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(dir, "groundzero", "engines")
	}
	eng, err := tfrun.IdentifyCached(ctx, bin, cache)
	if err != nil {
		return false, usage(err, "--tf-binary must name an OpenTofu or Terraform binary")
	}
	r.clean = append(r.clean, func() { eng.Close() })
	if err := tfrun.Check(eng, r.Policy.Engine.Version, r.Policy.Engine.SHA256); err != nil {
		return fail(err.Error(), "use the binary policy.yaml pins under engine:, or change the pin through review")
	}
	r.engine = eng
	calls, err := tfconfig.Modules(r.dir)
	if err != nil {
		return fail(err.Error(), "module sources must be literal strings in a configuration OpenTofu can read")
	}
	var allowed []tfconfig.RemoteModule
	for _, m := range r.Policy.Modules.Remote {
		allowed = append(allowed, tfconfig.RemoteModule{Source: m.Source, Version: m.Version})
	}
	if problems := tfconfig.CheckModules(r.cfg.Repo.Root, manifest.IsGoverned, calls, allowed); len(problems) > 0 {
		var lines []string
		for _, p := range problems {
			lines = append(lines, p.String())
		}
		return fail(strings.Join(lines, "; "), "keep local modules under the governed tree (and in the MANIFEST); list remote modules in policy.yaml modules.remote with an exact version")
	}
	lockFile := filepath.Join(r.dir, ".terraform.lock.hcl")
	if sum, err := manifest.HashFile(lockFile); err == nil {
		r.lock = fmt.Sprintf("%x", sum)
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, usage(err, "")
	}
	dataDir, cleanup, err := tfrun.NewDataDir()
	if err != nil {
		return false, usage(err, "")
	}
	r.clean = append(r.clean, cleanup)
	r.tf = &tfrun.Runner{Bin: eng.Path, Dir: r.dir, DataDir: dataDir, Environ: r.cfg.Environ}
	detail := fmt.Sprintf("%s %s (sha256:%.16s) on %s", filepath.Base(bin), eng.Version, eng.SHA256, r.dirRel)
	if r.lock != "" {
		detail += fmt.Sprintf("; provider lock sha256:%.16s, read-only", r.lock)
	}
	if len(calls) > 0 {
		detail += fmt.Sprintf("; %d module call(s) governed", len(calls))
	}
	if _, err := os.Lstat(filepath.Join(r.dir, ".terraform")); err == nil {
		detail += "; the .terraform/ directory in the repository is ignored (OpenTofu works in a private directory)"
	}
	return r.add(gate.Result{Name: name, OK: true, Detail: detail}), nil
}

// EngineDetails are the facts about what ran, for the audit entries of plan
// and apply.
func (r *Run) EngineDetails() map[string]any {
	d := map[string]any{"dir": r.dirRel}
	if r.engine != nil {
		d["engine_version"], d["engine_sha256"] = r.engine.Version, r.engine.SHA256
	}
	if r.lock != "" {
		d["provider_lock_sha256"] = r.lock
	}
	return d
}

// Init runs `tofu init` in the private working directory.
func (r *Run) Init(ctx context.Context) error {
	_, err := r.tf.Run(ctx, r.cfg.Stderr, tfrun.InitArgs(r.lock != "")...)
	return err
}

func (r *Run) repoRel(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r.cfg.Repo.Root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("is outside the repository")
	}
	return filepath.ToSlash(rel), nil
}
