package govern

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/atomicfile"
	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// BootstrapRequest is what `groundzero bootstrap` carries out.
type BootstrapRequest struct {
	Intent  IntentFile
	Plan    string    // the approved plan of the bootstrap configuration; "" when none
	Confirm Confirmer // nil: no terminal to confirm on
	// Open opens the kind's control plane for spec.
	Open func(ctx context.Context, spec backend.Spec) (backend.Store, error)
	// Passphrase is the state passphrase (key provider pbkdf2), from
	// GROUNDZERO_STATE_PASSPHRASE; it is never recorded.
	Passphrase string
	// CIIdentities opens the control plane of the environment's CI
	// identities (policy.yaml ci.aws / ci.gcp); nil opens the cloud's own
	// with its default credentials.
	CIIdentities func(ctx context.Context, spec *ciidentity.Spec) (ciidentity.Identities, error)
}

// Bootstrapped is what a bootstrap did.
type Bootstrapped struct {
	Spec        backend.Spec
	Provisioned *backend.Provisioned
	Judgement   *backend.Judgement
	Lock        *lock.Lock
	LockPath    string
	Applied     *Applied // the approved plan's apply, nil when there was none
	Resumed     bool
	Migrated    bool
}

// ProbeError: the store failed a capability the policy requires, and no
// waiver covers it (T28).
type ProbeError struct{ Judgement *backend.Judgement }

func (e *ProbeError) Error() string { return "capability probe: " + e.Judgement.String() }

// progress is kept in .groundzero/bootstrap/ENV.json so that a bootstrap
// stopped part-way resumes where it stopped. It only ever skips work that
// is idempotent anyway, or that the trail shows done; losing it makes a
// resume redo steps or refuse, never skip a check.
type progress struct {
	Intent   string `json:"intent"`
	Nonce    string `json:"nonce"`
	Consumed bool   `json:"consumed"`
	Applied  bool   `json:"applied"`
	Migrated bool   `json:"migrated"`
}

func progressPath(env string) string {
	return path.Join(repo.LocalStateDir, "bootstrap", env+".json")
}

func (r *Run) loadProgress() progress {
	var p progress
	data, err := r.cfg.Repo.ReadFile(progressPath(r.EnvName), 1<<16)
	if err == nil {
		json.Unmarshal(data, &p)
	}
	return p
}

func (r *Run) saveProgress(p progress) error {
	data, _ := json.Marshal(p)
	return r.cfg.Repo.WriteFile(progressPath(r.EnvName), append(data, '\n'))
}

// Bootstrap is what `groundzero bootstrap` runs after the static gates (the
// CLI runs them with the tag gate required, whatever policy.yaml says): the
// engine gate; the environment has no lock in force (or its lock was
// revoked); the bootstrap intent (two people, this environment, commit and
// plan); the parity policy on the configuration and the plan; the two-step
// confirmation; then, with the intent consumed, it provisions the store,
// probes it, applies the approved plan into local state, renders
// backend.tf, migrates the state into the store, and writes the lock for
// two people to sign. Each step is recorded. A bootstrap that stopped
// part-way resumes with the same intent.
func (r *Run) Bootstrap(ctx context.Context, req BootstrapRequest) (*Bootstrapped, error) {
	spec, required, err := backend.FromPolicy(r.Policy, r.EnvName)
	if err != nil {
		return nil, usage(err, "complete the backend section of governance/policy.yaml")
	}
	if ciidentity.Wanted(r.Policy) {
		if err := ciidentity.Precheck(r.Policy, spec); err != nil {
			return nil, usage(err, ciHint(err))
		}
	}
	out := &Bootstrapped{Spec: spec}
	if ok, err := r.Engine(ctx); !ok || err != nil {
		return nil, err
	}
	st, err := r.Gates.ReadLock(r.EnvName, r.dirRel)
	if err != nil {
		return nil, usage(err, "restore the lock from git")
	}
	version, previous, revocation := 1, "", ""
	if st.Bootstrapped() {
		if st.Recorded == nil || !st.Revoked {
			what := "a lock"
			if st.Recorded != nil {
				what = fmt.Sprintf("lock version %d (audit entry %d)", st.Recorded.Version, st.Recorded.Seq)
			} else if st.Lock != nil {
				what = fmt.Sprintf("%s (version %d)", gate.LockPath(r.dirRel), st.Lock.Version)
			}
			r.add(gate.Result{Name: "backend", Detail: fmt.Sprintf("environment %s is bootstrapped already: %s is in force, and a lock is never replaced without a revocation", r.EnvName, what),
				Hint: "revoke it first, signed by two people under a revoke intent: `groundzero backend revoke --env " + r.EnvName + " --intent FILE --reason TEXT`"})
			return nil, nil
		}
		rev, err := r.revocationOf(st.Recorded.SHA256)
		var ge *GateError
		if errors.As(err, &ge) {
			r.add(ge.Result)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		version, previous, revocation = st.Recorded.Version+1, st.Recorded.SHA256, rev.ID
	}
	var held *Plan
	if req.Plan != "" {
		if held, err = r.hold(req.Plan); err != nil {
			return nil, usage(err, "run `groundzero plan` first, or pass --plan")
		}
	}
	if err := r.Init(ctx); err != nil {
		return nil, usage(err, "fix the configuration; OpenTofu's output above says what failed")
	}
	if held != nil {
		if err := r.show(ctx, held); err != nil {
			return nil, usage(err, "the plan file must be one that `groundzero plan` saved for this configuration")
		}
	}
	in := req.Intent.Intent
	prog := r.loadProgress()
	resuming := prog.Intent == in.ID && prog.Nonce == in.Nonce && prog.Consumed
	planSHA := ""
	if held != nil {
		planSHA = held.SHA256
	}
	ig := gate.Result{Name: "intent", OK: true}
	switch {
	case in.Action != "bootstrap":
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s is for %s; bootstrap needs an intent with action bootstrap", in.ID, in.Action),
			Hint: "create one: `groundzero intent new --env " + r.EnvName + " --action bootstrap --reason TEXT --plan FILE`"}
	case held != nil && held.Summary.Destroy > 0:
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("the bootstrap plan destroys %d resource(s)", held.Summary.Destroy), Hint: "a bootstrap only creates; destroying needs an intent with action destroy and `groundzero apply`"}
	default:
		v, verr := VerifyIntent(ctx, r.Gates, r.Policy, req.Intent, r.EnvName, planSHA)
		var ue *UsageError
		if errors.As(verr, &ue) {
			return nil, ue
		}
		var used *intent.UsedError
		switch {
		case errors.As(verr, &used) && resuming:
			ig.Detail = fmt.Sprintf("intent %s resumes the bootstrap it started (audit entry %d)", in.ID, used.Seq)
			out.Resumed = true
		case verr != nil:
			ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, verr), Hint: IntentHint(verr)}
		default:
			ig.Detail = fmt.Sprintf("intent %s (%s on %s) requested by %s, approved by %s", in.ID, in.Action, in.Env, in.Requester, strings.Join(v.Approvers, ", "))
		}
	}
	if !r.add(ig) {
		return nil, nil
	}
	if ok, err := r.ConfigParity(ctx); !ok || err != nil {
		return nil, err
	}
	if held != nil {
		res, _, err := r.ParityGate(ctx, "plan", parity.FromPlan(held.JSON))
		if err != nil {
			return nil, err
		}
		if !r.add(res) {
			return nil, nil
		}
	}
	if !out.Resumed {
		if ok, err := r.confirmBootstrap(req, held, spec); !ok || err != nil {
			return nil, err
		}
		d := r.EngineDetails()
		for k, v := range map[string]any{"nonce": in.Nonce, "expires": in.Expires, "env": r.EnvName, "action": in.Action, "plan_sha256": planSHA, "backend": spec.Kind} {
			d[k] = v
		}
		r.Note("intent.consumed", in.ID, d)
		if err := r.cfg.Record(r.Events()); err != nil {
			return nil, err
		}
		prog = progress{Intent: in.ID, Nonce: in.Nonce, Consumed: true}
		if err := r.saveProgress(prog); err != nil {
			return nil, usage(err, "")
		}
	}
	// Provision and probe the store.
	prov, j, err := r.provision(ctx, "bootstrap", spec, required, req.Open, in.ID)
	out.Provisioned, out.Judgement = prov, j
	if err != nil {
		return out, err
	}
	if prov.Key != "" {
		spec.Key.ID = prov.Key
		out.Spec = spec
	}
	ci, err := r.ciIdentities(ctx, req, spec, in.ID)
	if err != nil {
		return out, err
	}
	// Apply the approved plan into local state.
	if held != nil && !prog.Applied {
		a, err := r.applyHeld(ctx, held, in)
		out.Applied = a
		if err != nil {
			return out, err
		}
		if a.Err != nil {
			return out, fmt.Errorf("the bootstrap plan did not apply: %w", a.Err)
		}
		prog.Applied = true
		if err := r.saveProgress(prog); err != nil {
			return out, usage(err, "")
		}
	}
	// Render backend.tf and move the state into the store.
	tmpl, err := backend.TemplateFor(spec.Kind, false)
	if err != nil {
		return out, usage(err, "")
	}
	l := &lock.Lock{
		Backend: spec.Kind, Bucket: spec.Bucket, Created: r.cfg.Now.UTC().Truncate(time.Second).Format(time.RFC3339), Encrypt: spec.Encrypt,
		Endpoint: spec.Endpoint, Env: r.EnvName, Intent: in.ID, KeyAddress: keyAddress(spec), KeyID: spec.Key.ID, KeyMount: keyMount(spec),
		KeyName: spec.Key.Name, KeyProvider: spec.Key.Provider, Kind: lock.Kind, LockMethod: spec.Lock, LockTable: spec.LockTable,
		Namespace: spec.Namespace, Path: spec.Path, Previous: previous, Probes: j.Passed, Region: spec.Region, Revocation: revocation,
		StateKey: spec.StateKey(), Template: tmpl.Name, TemplateSHA256: tmpl.SHA256, Version: version,
	}
	if governed, _, err := gittag.Governed(ctx, r.cfg.Repo); err == nil {
		l.Commit = governed
	}
	l.Tag = in.Tag
	l.Resources = map[string]string{}
	if ci != nil {
		l.Resources["ci_federation"], l.Resources["ci_plan"], l.Resources["ci_apply"] = ci.Federation, ci.Identities[ciidentity.RolePlan], ci.Identities[ciidentity.RoleApply]
	}
	if prov != nil {
		for k, v := range map[string]string{"bucket": prov.Bucket, "key": prov.Key, "lock": prov.Lock} {
			if v != "" {
				l.Resources[k] = v
			}
		}
	}
	for _, w := range j.Waived {
		l.Waivers = append(l.Waivers, lock.Waiver{Probe: w.Probe, Reason: w.Reason})
	}
	final, err := tmpl.Render(l.Values())
	if err != nil {
		return out, usage(err, "fix the backend section of governance/policy.yaml")
	}
	if spec.Encrypt && spec.Key.Provider == backend.KeyPBKDF2 {
		if len(req.Passphrase) < 16 {
			return out, usage(errors.New("key provider pbkdf2 needs GROUNDZERO_STATE_PASSPHRASE (16 characters or more)"), "set it from your secret store; it is never written down")
		}
		r.tf.Set = append(r.tf.Set, "TF_VAR_"+backend.PassphraseVar+"="+req.Passphrase)
	}
	if !prog.Migrated && spec.Kind != backend.KindLocal {
		mv := l.Values()
		mv.Migrate = true
		transitional, err := tmpl.Render(mv)
		if err != nil {
			return out, usage(err, "")
		}
		if err := r.migrate(ctx, transitional); err != nil {
			r.Note("backend.migrate", spec.Bucket, map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
			return out, r.stepFailed("", in.ID, err)
		}
		prog.Migrated = true
		if err := r.saveProgress(prog); err != nil {
			return out, usage(err, "")
		}
	}
	out.Migrated = true
	restore, err := r.writeBackendFile(final)
	if err != nil {
		return out, usage(err, "")
	}
	// The rendered configuration reads the state back from the store.
	if err := r.verifyState(ctx, spec.Kind == backend.KindLocal); err != nil {
		restore()
		r.Note("backend.migrate", spec.Bucket, map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
		return out, r.stepFailed("", in.ID, err)
	}
	r.Note("backend.migrate", spec.Bucket, map[string]any{"env": r.EnvName, "ok": true, "state_key": l.StateKey, "backend_tf_sha256": sha256hex(final)})
	// Write the lock, and record it.
	data, err := l.Marshal()
	if err != nil {
		return out, err
	}
	lp := gate.LockPath(r.dirRel)
	before, beforeErr := r.cfg.Repo.ReadFile(lp, lock.MaxSize)
	if err := r.cfg.Repo.WriteFile(lp, data); err != nil {
		return out, usage(err, "")
	}
	r.Note(anchor.LockRecorded, lp, map[string]any{"env": r.EnvName, "version": version, "sha256": lock.SHA256(data), "previous": previous,
		"revocation": revocation, "intent": in.ID, "template": tmpl.Name, "template_sha256": tmpl.SHA256, "backend": spec.Kind,
		"bucket": spec.Bucket, "key_id": spec.Key.ID, "waivers": l.Waivers})
	if err := r.cfg.Record(r.Events()); err != nil {
		// A lock counts only once recorded: put the earlier one back, so
		// that the bootstrap can run again.
		if beforeErr == nil {
			r.cfg.Repo.WriteFile(lp, before)
		} else {
			r.cfg.Repo.Remove(lp)
		}
		restore()
		return out, r.stepFailed("", in.ID, err)
	}
	r.cfg.Repo.Remove(progressPath(r.EnvName))
	os.RemoveAll(r.cfg.Repo.Abs(path.Join(repo.LocalStateDir, "bootstrap", r.EnvName)))
	out.Lock, out.LockPath = l, lp
	return out, nil
}

// provision creates the store (or finds it made) and probes it, recording
// both. A store that fails a required probe no waiver covers fails the
// probe gate with a *ProbeError. command is the groundzero command running
// (bootstrap, backend create, drill): a failed step's error says to run it
// again.
func (r *Run) provision(ctx context.Context, command string, spec backend.Spec, required []string, open func(context.Context, backend.Spec) (backend.Store, error), subject string) (*backend.Provisioned, *backend.Judgement, error) {
	store, err := open(ctx, spec)
	if err != nil {
		return nil, nil, r.failedIn(command, "backend.create", subject, err)
	}
	prov, err := store.Create(ctx)
	if prov == nil {
		prov = &backend.Provisioned{}
	}
	r.Note("backend.create", spec.Bucket, provisionedDetails(r.EnvName, spec, prov, err))
	if err != nil {
		return prov, nil, r.failedIn(command, "", subject, err)
	}
	if prov.Key != "" {
		spec.Key.ID = prov.Key
		if store, err = open(ctx, spec); err != nil {
			return prov, nil, r.failedIn(command, "backend.probe", subject, err)
		}
	}
	results, calls, err := store.Probe(ctx)
	if err != nil {
		return prov, nil, r.failedIn(command, "backend.probe", subject, err)
	}
	var waivers []backend.Waiver
	for _, w := range r.Policy.Backend.Waive {
		waivers = append(waivers, backend.Waiver{Probe: w.Probe, Reason: w.Reason})
	}
	j := backend.Judge(results, required, waivers)
	r.Note("backend.probe", spec.Bucket, map[string]any{"env": r.EnvName, "ok": j.OK(), "results": results, "calls": calls, "waived": j.Waived, "required": required})
	if !j.OK() {
		r.add(gate.Result{Name: "probe", Detail: j.String(),
			Hint: "use a store that has the capability, or waive it in governance/policy.yaml backend.waive with a reason (the waiver needs a new, signed bootstrap intent)"})
		return prov, j, &ProbeError{j}
	}
	r.add(gate.Result{Name: "probe", OK: true, Detail: j.String()})
	return prov, j, nil
}

// ciIdentities makes the environment's OIDC-federated CI identities, once
// the store and its key exist, and records what was made; nil when the
// policy asks for none. Identities found different are never overwritten:
// the step fails with their findings.
func (r *Run) ciIdentities(ctx context.Context, req BootstrapRequest, spec backend.Spec, subject string) (*ciidentity.Provisioned, error) {
	if !ciidentity.Wanted(r.Policy) {
		return nil, nil
	}
	cs, err := ciidentity.FromPolicy(r.Policy, spec)
	if err != nil {
		r.Note("ci.identity.create", subject, map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
		return nil, usage(err, ciHint(err))
	}
	open := req.CIIdentities
	if open == nil {
		open = ciidentity.Open
	}
	ids, err := open(ctx, cs)
	if err != nil {
		return nil, r.stepFailed("ci.identity.create", subject, err)
	}
	p, err := ids.Provision(ctx)
	d := map[string]any{"env": r.EnvName, "kind": cs.Kind, "repository": cs.Repository, "ok": err == nil}
	if p != nil {
		d["federation"], d["identities"], d["calls"] = p.Federation, p.Identities, p.Calls
	}
	var de *ciidentity.DriftError
	if errors.As(err, &de) {
		d["findings"] = de.Findings
	}
	if err != nil {
		d["error"] = err.Error()
	}
	res := subject
	if p != nil && p.Federation != "" {
		res = p.Federation
	}
	r.Note("ci.identity.create", res, d)
	if err != nil {
		return p, r.stepFailed("", subject, err)
	}
	return p, nil
}

func ciHint(err error) string {
	var pe *ciidentity.PolicyError
	if errors.As(err, &pe) {
		return pe.Hint
	}
	return "complete the ci section of governance/policy.yaml"
}

// CreateStore is what `groundzero backend create` runs after the static
// gates: the bootstrap intent must verify (it is not consumed: bootstrap
// consumes it), then the store is provisioned and probed.
func (r *Run) CreateStore(ctx context.Context, f IntentFile, open func(context.Context, backend.Spec) (backend.Store, error)) (*Bootstrapped, error) {
	spec, required, err := backend.FromPolicy(r.Policy, r.EnvName)
	if err != nil {
		return nil, usage(err, "complete the backend section of governance/policy.yaml")
	}
	in := f.Intent
	ig := gate.Result{Name: "intent", OK: true}
	if in.Action != "bootstrap" {
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s is for %s; creating the store needs the bootstrap intent", in.ID, in.Action)}
	} else if v, verr := VerifyIntent(ctx, r.Gates, r.Policy, f, r.EnvName, in.PlanSHA256); verr != nil {
		var ue *UsageError
		if errors.As(verr, &ue) {
			return nil, ue
		}
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, verr), Hint: IntentHint(verr)}
	} else {
		ig.Detail = fmt.Sprintf("intent %s (bootstrap on %s) approved by %s; bootstrap consumes it", in.ID, in.Env, strings.Join(v.Approvers, ", "))
	}
	if !r.add(ig) {
		return nil, nil
	}
	out := &Bootstrapped{Spec: spec}
	out.Provisioned, out.Judgement, err = r.provision(ctx, "backend create", spec, required, open, in.ID)
	return out, err
}

// RevokedLockOnly reports whether the static gates failed only because the
// environment's lock was revoked, which is what a new bootstrap follows: it
// runs the backend gate again as bootstrap judges it, and keeps that result.
func (r *Run) RevokedLockOnly() bool {
	idx := -1
	for i, res := range r.Results {
		if res.OK {
			continue
		}
		if res.Name != "backend" || idx >= 0 {
			return false
		}
		idx = i
	}
	if idx < 0 || r.Gates == nil || r.Policy == nil {
		return false
	}
	res := r.Gates.BackendGateForBootstrap(r.EnvName, r.Policy.Environment(r.EnvName).Dir)
	r.Results[idx] = res
	return res.OK
}

// stepFailed records a failed bootstrap step and returns err as the
// command's error.
func (r *Run) stepFailed(action, subject string, err error) error {
	return r.failedIn("bootstrap", action, subject, err)
}

// failedIn records a failed step of command and returns err as the
// command's error, with the hint to run the same command again: bootstrap
// resumes where it stopped; backend create and drill find what they made.
func (r *Run) failedIn(command, action, subject string, err error) error {
	if action != "" {
		r.Note(action, subject, map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
	}
	again := "run the same " + command + " again"
	if command == "bootstrap" {
		again += " to resume"
	}
	return fmt.Errorf("%w; nothing is lost: fix the cause and %s", err, again)
}

func provisionedDetails(env string, spec backend.Spec, p *backend.Provisioned, err error) map[string]any {
	d := map[string]any{"env": env, "kind": spec.Kind, "ok": err == nil}
	if p != nil {
		d["calls"] = p.Calls
		d["bucket_id"], d["key_id"], d["lock_id"] = p.Bucket, p.Key, p.Lock
	}
	if err != nil {
		d["error"] = err.Error()
	}
	return d
}

func keyAddress(s backend.Spec) string {
	if s.Key.Provider == backend.KeyOpenBao {
		return s.Key.Address
	}
	return ""
}

func keyMount(s backend.Spec) string {
	if s.Key.Provider == backend.KeyOpenBao {
		return s.Key.Mount
	}
	return ""
}

// revocationOf finds the revocation record of the lock with that SHA-256.
func (r *Run) revocationOf(sha string) (*lock.Revocation, error) {
	dir := r.cfg.Repo.Abs(repo.RevocationsDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, usage(err, "")
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		rel := path.Join(repo.RevocationsDir, e.Name())
		data, err := r.cfg.Repo.ReadFile(rel, lock.MaxSize)
		if err != nil {
			continue
		}
		rev, err := lock.ParseRevocation(rel, data)
		if err != nil || rev.Lock != sha {
			continue
		}
		// The trail's word that the lock was revoked is not enough: the
		// record itself must carry two people's signatures.
		sigs, err := sigfile.Load(r.cfg.Repo, rel)
		if err != nil {
			return nil, usage(err, "")
		}
		if _, err := lock.Approve("revocation "+rev.ID, data, sigs, r.Gates.Registry(), r.cfg.Now, lock.RevocationKind, r.Policy.Gates.Approvals["revoke"]); err != nil {
			return nil, &GateError{gate.Result{Name: "backend", Detail: err.Error(), Hint: "a revocation needs two people's signatures: `groundzero backend sign " + rel + " --key KEYSPEC`"}}
		}
		return rev, nil
	}
	return nil, usage(fmt.Errorf("the audit trail records the lock sha256:%.16s as revoked, but no revocation record for it is in %s", sha, repo.RevocationsDir),
		"restore the revocation record and its signatures from git")
}

// confirmBootstrap shows what will happen and asks for the token and APPLY.
func (r *Run) confirmBootstrap(req BootstrapRequest, held *Plan, spec backend.Spec) (bool, error) {
	in := req.Intent.Intent
	if !r.MachineGate("bootstrap", in.ID) {
		return false, nil
	}
	if !r.Policy.Environment(r.EnvName).ConfirmRequired() {
		return r.add(gate.Result{Name: "confirm", OK: true, Detail: "confirmation is off for environment " + r.EnvName + " in policy.yaml"}), nil
	}
	if req.Confirm == nil {
		r.add(gate.Result{Name: "confirm", Detail: "no terminal to confirm on"})
		r.Note("bootstrap.refused", in.ID, map[string]any{"reason": "no terminal", "env": r.EnvName})
		return false, NoTerminalError{}
	}
	summary := fmt.Sprintf("Bootstrap environment %s: create the %s state store %s (key %s, lock %s) and move the state into it.", r.EnvName, spec.Kind, where(spec), spec.Key.Provider, spec.Lock)
	if held != nil {
		summary += "\n" + r.ConfirmSummary(held)
	}
	summary += fmt.Sprintf("\nIntent %s (%s)", in.ID, in.Action)
	if err := req.Confirm(summary, in.Token()); err != nil {
		r.add(gate.Result{Name: "confirm", Detail: err.Error(), Hint: "nothing was changed; run bootstrap again and type the token, then APPLY"})
		r.Note("bootstrap.abort", in.ID, map[string]any{"reason": err.Error(), "env": r.EnvName})
		return false, nil
	}
	return r.add(gate.Result{Name: "confirm", OK: true, Detail: "token and APPLY typed on the terminal"}), nil
}

func where(s backend.Spec) string {
	if s.Kind == backend.KindLocal {
		return s.Path
	}
	return s.Bucket + "/" + s.StateKey()
}

// migrate copies the local bootstrap state into the store: with the
// transitional backend.tf (an unencrypted fallback for reading the local
// state) in the configuration directory, where local modules and relative
// paths resolve as they always do; the data directory remembers the local
// backend, so init moves the state. On failure backend.tf is put back as it
// was, so that the bootstrap can run again.
func (r *Run) migrate(ctx context.Context, transitional []byte) error {
	restore, err := r.writeBackendFile(transitional)
	if err != nil {
		return err
	}
	if _, err := r.tf.Run(ctx, r.cfg.Stderr, tfrun.MigrateArgs(r.lock != "")...); err != nil {
		restore()
		return err
	}
	return nil
}

// writeBackendFile replaces backend.tf atomically and returns what puts the
// earlier one back (or removes the file when there was none).
func (r *Run) writeBackendFile(data []byte) (restore func(), err error) {
	rel := path.Join(r.dirRel, gate.BackendFile)
	before, readErr := r.cfg.Repo.ReadFile(rel, 1<<20)
	if err := r.cfg.Repo.WriteFile(rel, data); err != nil {
		return nil, err
	}
	return func() {
		if readErr == nil {
			r.cfg.Repo.WriteFile(rel, before)
		} else {
			r.cfg.Repo.Remove(rel)
		}
	}, nil
}

// setAsideLocalState moves the local bootstrap state out of the
// configuration directory into .groundzero/bootstrap/, private.
func (r *Run) setAsideLocalState() error {
	aside := r.cfg.Repo.Abs(path.Join(repo.LocalStateDir, "bootstrap", r.EnvName))
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return err
	}
	for _, n := range []string{"terraform.tfstate", "terraform.tfstate.backup"} {
		src := filepath.Join(r.dir, n)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		if err := os.Rename(src, filepath.Join(aside, n+".migrated")); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(r.dir)
}

// verifyState initialises the rendered configuration afresh and reads the
// state back from the store; then the local copy is removed.
func (r *Run) verifyState(ctx context.Context, local bool) error {
	dataDir, cleanup, err := tfrun.NewDataDir()
	if err != nil {
		return err
	}
	defer cleanup()
	if !local {
		// The local copy moved into the store: keep it aside (never in the
		// configuration directory, where init would offer to move it
		// again) until the lock is written.
		if err := r.setAsideLocalState(); err != nil {
			return err
		}
	}
	tf := *r.tf
	tf.DataDir = dataDir
	if _, err := tf.Run(ctx, r.cfg.Stderr, tfrun.InitArgs(r.lock != "")...); err != nil {
		return err
	}
	if _, err := tf.Run(ctx, nil, tfrun.ShowJSONArgs("")...); err != nil {
		return err
	}
	return nil
}
