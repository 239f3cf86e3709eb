package govern

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/machine"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/tfrun"
	"github.com/groundzero/groundzero/internal/trail"
)

// Summary counts what a plan does.
type Summary struct {
	Add, Change, Destroy int
}

func (s Summary) String() string {
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", s.Add, s.Change, s.Destroy)
}

// SummaryOf counts what a plan adds, changes and destroys (managed
// resources only; a replacement counts as one add and one destroy).
func SummaryOf(p *tfjson.Plan) Summary { return summarise(p) }

func summarise(p *tfjson.Plan) Summary {
	var s Summary
	if p == nil {
		return s
	}
	for _, rc := range p.ResourceChanges {
		if rc == nil || rc.Change == nil || rc.Mode != tfjson.ManagedResourceMode {
			continue
		}
		a := rc.Change.Actions
		switch {
		case a.Replace():
			s.Add++
			s.Destroy++
		case a.Create():
			s.Add++
		case a.Update():
			s.Change++
		case a.Delete():
			s.Destroy++
		}
	}
	return s
}

// Change is one resource change of a plan, as a person reviews it.
type Change struct {
	Symbol  string // "+", "~", "-", "-/+", "+/-", "<=" or "."
	Action  string // create, update, destroy, replace, read or forget
	Address string
}

// String is the change as approve and apply print it, e.g.
// "+ create terraform_data.one" or "-/+ replace aws_s3_bucket.state".
func (c Change) String() string { return c.Symbol + " " + c.Action + " " + c.Address }

// Changes lists what a plan does to each resource, in the plan's order;
// resources it leaves as they are are left out.
func Changes(p *tfjson.Plan) []Change {
	if p == nil {
		return nil
	}
	var out []Change
	for _, rc := range p.ResourceChanges {
		if rc == nil || rc.Change == nil {
			continue
		}
		a := rc.Change.Actions
		c := Change{Address: rc.Address}
		switch {
		case a.DestroyBeforeCreate():
			c.Symbol, c.Action = "-/+", "replace"
		case a.CreateBeforeDestroy():
			c.Symbol, c.Action = "+/-", "replace"
		case a.Create():
			c.Symbol, c.Action = "+", "create"
		case a.Update():
			c.Symbol, c.Action = "~", "update"
		case a.Delete():
			c.Symbol, c.Action = "-", "destroy"
		case a.Read():
			c.Symbol, c.Action = "<=", "read"
		case a.Forget():
			c.Symbol, c.Action = ".", "forget"
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

// Plan is a saved plan held privately: the bytes that were hashed are the
// bytes that are shown, checked and applied (T30).
type Plan struct {
	Path    string // the private copy (0600, in a private directory)
	SHA256  string
	Summary Summary
	JSON    *tfjson.Plan
	// Artifacts name the plan and its rendering kept as evidence (plan
	// only); ArtifactErr says why they could not be kept.
	Artifacts   []string
	ArtifactErr error

	shown []byte // the `tofu show -json` bytes JSON was parsed from
}

// hold copies the plan file at src into a private directory and hashes the
// copy; nothing else can write it afterwards.
func (r *Run) hold(src string) (*Plan, error) {
	dir, err := os.MkdirTemp("", "groundzero-plan-")
	if err != nil {
		return nil, err
	}
	r.clean = append(r.clean, func() { os.RemoveAll(dir) })
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	dst := filepath.Join(dir, "plan.tfplan")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, maxPlanSize+1)); err != nil {
		out.Close()
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dst); err == nil && fi.Size() > maxPlanSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", src, maxPlanSize)
	}
	return &Plan{Path: dst, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

const maxPlanSize = 1 << 30

// show reads the held plan as JSON and summarises it.
func (r *Run) show(ctx context.Context, p *Plan) error {
	js, err := r.tf.Run(ctx, nil, tfrun.ShowJSONArgs(p.Path)...)
	if err != nil {
		return err
	}
	if p.JSON, err = parity.ParsePlan(js); err != nil {
		return err
	}
	p.shown = js
	p.Summary = summarise(p.JSON)
	return nil
}

// MakePlan is what `groundzero plan` runs after the static gates: the engine
// gate, the parity policy on the configuration, `tofu init` and `tofu plan`
// into the private working directory, and the parity policy on the plan. The
// plan is copied to out, and its SHA-256 recorded. The plan and its
// `tofu show -json` rendering are kept as evidence artifacts
// (PlanArtifacts), so that approvers review what they sign from the
// evidence store; the plan's audit entry names them and records the
// rendering's SHA-256. A failure to keep them is Plan.ArtifactErr.
func (r *Run) MakePlan(ctx context.Context, out string, destroy bool) (*Plan, error) {
	if ok, err := r.Engine(ctx); !ok || err != nil {
		return nil, err
	}
	if ok, err := r.ConfigParity(ctx); !ok || err != nil {
		return nil, err
	}
	if err := r.Init(ctx); err != nil {
		r.Note("plan.error", r.EnvName, map[string]any{"error": err.Error()})
		return nil, usage(err, "fix the configuration or the backend; OpenTofu's output above says what failed")
	}
	private := filepath.Join(r.tf.DataDir, "groundzero.tfplan")
	if _, err := r.tf.Run(ctx, r.cfg.Stderr, tfrun.PlanArgs(private, destroy)...); err != nil {
		r.Note("plan.error", r.EnvName, map[string]any{"error": err.Error()})
		return nil, usage(err, "fix the configuration or the backend; OpenTofu's output above says what failed")
	}
	p, err := r.hold(private)
	if err != nil {
		return nil, usage(err, "")
	}
	if err := r.show(ctx, p); err != nil {
		return nil, usage(err, "")
	}
	res, _, err := r.ParityGate(ctx, "plan", parity.FromPlan(p.JSON))
	if err != nil {
		return nil, err
	}
	r.add(res)
	if err := copyFile(p.Path, out); err != nil {
		return nil, usage(err, "")
	}
	rel, _ := r.repoRel(out)
	d := r.EngineDetails()
	for k, v := range map[string]any{"plan_sha256": p.SHA256, "plan_json_sha256": sha256hex(p.shown),
		"add": p.Summary.Add, "change": p.Summary.Change, "destroy": p.Summary.Destroy, "file": rel, "ok": res.OK} {
		d[k] = v
	}
	if p.ArtifactErr = r.keepPlan(p); p.ArtifactErr != nil {
		d["artifacts_error"] = p.ArtifactErr.Error()
	} else {
		d["artifacts"] = p.Artifacts
	}
	r.Note("plan", r.EnvName, d)
	return p, nil
}

// PlanArtifacts names the evidence artifacts of the saved plan with this
// SHA-256: the plan file, and its `tofu show -json` rendering.
func PlanArtifacts(sha string) (plan, rendering string) {
	return "plan-" + sha + ".tfplan", "plan-" + sha + ".json"
}

// keepPlan stores the held plan's bytes (hashed again: the bytes kept are
// the bytes checked) and its rendering as evidence, once. Names carry the
// plan's hash, so one already kept under its name is the same plan; the
// rendering is checked against the audit entry when it is read back.
func (r *Run) keepPlan(p *Plan) error {
	if r.cfg.Artifact == nil {
		return errors.New("no evidence store to keep the plan in")
	}
	data, err := os.ReadFile(p.Path)
	if err != nil {
		return err
	}
	if sha256hex(data) != p.SHA256 {
		return fmt.Errorf("the held plan changed after it was hashed")
	}
	planName, jsonName := PlanArtifacts(p.SHA256)
	for _, a := range []struct {
		name string
		data []byte
	}{{planName, data}, {jsonName, p.shown}} {
		var exists *trail.ArtifactExistsError
		if err := r.cfg.Artifact(a.name, a.data); err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("keeping %s: %w", a.name, err)
		}
	}
	p.Artifacts = []string{planName, jsonName}
	return nil
}

// EvidenceError reports a saved plan that the evidence store does not hold,
// or holds in a form that does not match what was recorded for it.
type EvidenceError struct {
	SHA256 string // the plan's SHA-256
	Reason string
}

func (e *EvidenceError) Error() string {
	return fmt.Sprintf("plan sha256:%s cannot be reviewed from the evidence store: %s", e.SHA256, e.Reason)
}

// PlanEvidence is a saved plan as the evidence store keeps it, with what the
// audit trail recorded about it.
type PlanEvidence struct {
	SHA256 string // the plan's SHA-256, as an intent's plan_sha256 names it
	Plan   []byte // the plan artifact's bytes
	JSON   []byte // the rendering artifact's bytes
	// Recorded are the rendering SHA-256s (plan_json_sha256) that the
	// audit trail's plan entries for this plan record.
	Recorded []string
}

// Check verifies the evidence: the plan artifact hashes to SHA256, the
// audit trail records one rendering for it, and the rendering artifact is
// that one and reads as a plan. It returns the rendered plan.
func (e *PlanEvidence) Check() (*tfjson.Plan, error) {
	planName, jsonName := PlanArtifacts(e.SHA256)
	fail := func(format string, args ...any) (*tfjson.Plan, error) {
		return nil, &EvidenceError{SHA256: e.SHA256, Reason: fmt.Sprintf(format, args...)}
	}
	if got := sha256hex(e.Plan); got != e.SHA256 {
		return fail("%s hashes to sha256:%s, not the plan's hash", planName, got)
	}
	recorded := slices.Compact(slices.Sorted(slices.Values(e.Recorded)))
	switch {
	case len(recorded) == 0:
		return fail("no plan entry in the audit trail records a rendering of it")
	case len(recorded) > 1:
		return fail("the audit trail records %d different renderings of it", len(recorded))
	}
	if got := sha256hex(e.JSON); got != recorded[0] {
		return fail("%s hashes to sha256:%s, but the plan's audit entry recorded sha256:%s", jsonName, got, recorded[0])
	}
	p, err := parity.ParsePlan(e.JSON)
	if err != nil {
		return fail("%s: %v", jsonName, err)
	}
	return p, nil
}

// ShowPlan renders a saved plan file with the engine, for a person to
// review it: the engine gate, `tofu init` and `tofu show -json` of a private
// copy of the file. Run the static gates first. It returns nil Plan when
// the engine gate failed.
func (r *Run) ShowPlan(ctx context.Context, file string) (*Plan, error) {
	if ok, err := r.Engine(ctx); !ok || err != nil {
		return nil, err
	}
	p, err := r.hold(file)
	if err != nil {
		return nil, usage(err, "")
	}
	if err := r.Init(ctx); err != nil {
		return nil, usage(err, "fix the configuration or the backend; OpenTofu's output above says what failed")
	}
	if err := r.show(ctx, p); err != nil {
		return nil, usage(err, "the plan file must be one that `groundzero plan` saved for this configuration")
	}
	return p, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// ApplyActions are the intent actions a plan can carry out.
var ApplyActions = []string{"apply", "bootstrap", "destroy"}

// IntentFile is an intent read from the repository.
type IntentFile struct {
	Intent *intent.Intent
	Data   []byte
	Rel    string // repository-relative path
}

// VerifyIntent applies every intent rule for env with the registry the gates
// trusted and the freshness anchor: signers and anchor gates must have
// passed. A *UsageError is the command's; any other error is the intent's.
func VerifyIntent(ctx context.Context, g *gate.Env, pol *policy.Policy, f IntentFile, env, planSHA string) (*intent.Verified, error) {
	if res := g.SignersGate(); !res.OK {
		return nil, &GateError{res}
	}
	if res := g.AnchorGate(env); !res.OK {
		return nil, &GateError{res}
	}
	governed, _, err := gittag.Governed(ctx, g.Repo)
	if err != nil {
		return nil, usage(err, "")
	}
	manifestSum := ""
	if g.ManifestRaw != nil {
		manifestSum = sha256hex(g.ManifestRaw) // the bytes the manifest gate verified
	} else if manifestSum, err = ManifestSum(g.Repo); err != nil {
		return nil, err
	}
	sigs, err := sigfile.Load(g.Repo, f.Rel)
	if err != nil {
		return nil, err
	}
	maxTTL, _ := policy.ParseDuration(pol.Gates.Intent.MaxTTL)
	in := f.Intent
	ix := g.Anchor
	return intent.Verify(in, f.Data, sigs, g.Registry(), pol.Gates.Approvals[in.Action], intent.Expect{
		Env: env, Action: in.Action, Commit: governed, ManifestSHA256: manifestSum, PlanSHA256: planSHA,
		Now: g.Now, TrailTime: ix.NewestCheckpoint(), MaxTTL: maxTTL, Used: ix.UsedSeq,
	})
}

// ManifestSum returns the SHA-256 of governance/MANIFEST's bytes, which
// intents carry as manifest_sha256. A missing or unreadable MANIFEST is a
// *UsageError.
func ManifestSum(r *repo.Repo) (string, error) {
	data, err := r.ReadFile(repo.ManifestFile, manifest.MaxSize)
	if err != nil {
		return "", usage(err, "run `groundzero manifest update` and have an approver sign it (`groundzero manifest sign`)")
	}
	return sha256hex(data), nil
}

// GateError is a gate that must pass before an intent is judged.
type GateError struct{ Result gate.Result }

func (e *GateError) Error() string { return e.Result.Detail }

// Confirmer asks a person to confirm; it returns nil only for the token and
// APPLY, typed in that order.
type Confirmer func(summary, token string) error

// ApplyRequest is what `groundzero apply` carries out.
type ApplyRequest struct {
	Intent  IntentFile
	Plan    string    // the saved plan file
	Confirm Confirmer // nil: no terminal to confirm on
	// CI replaces the prompt with the runner's identity, which the ci
	// gate (CIGate) must have verified; Confirm is not used.
	CI bool
}

// NoTerminalError: confirmation is required but there is no terminal.
type NoTerminalError struct{}

func (NoTerminalError) Error() string { return "apply needs a terminal for its two-step confirmation" }

// Applied is what an apply did.
type Applied struct {
	Plan      *Plan
	Log       []byte
	LogName   string // the evidence artifact that keeps Log
	LogErr    error  // why it could not be kept
	Resources []map[string]any
	Err       error // OpenTofu's failure, after the intent was consumed
}

// Apply is what `groundzero apply` runs after the static gates: the engine
// gate, the plan held privately and hashed, the intent (right action, this
// plan, approved, unused), the parity policy on the configuration and the
// plan, the two-step confirmation (in CI: the verified runner), then the
// intent is consumed (recorded durably) before OpenTofu applies exactly the
// held bytes. It returns nil Applied when a gate stopped it.
func (r *Run) Apply(ctx context.Context, req ApplyRequest) (*Applied, error) {
	if ok, err := r.Engine(ctx); !ok || err != nil {
		return nil, err
	}
	p, err := r.hold(req.Plan)
	if err != nil {
		return nil, usage(err, "run `groundzero plan` first, or pass --plan")
	}
	if err := r.Init(ctx); err != nil {
		return nil, usage(err, "fix the configuration or the backend; OpenTofu's output above says what failed")
	}
	if err := r.show(ctx, p); err != nil {
		return nil, usage(err, "the plan file must be one that `groundzero plan` saved for this configuration")
	}
	in := req.Intent.Intent
	ig := gate.Result{Name: "intent", OK: true}
	var approvers []string
	switch {
	case !slices.Contains(ApplyActions, in.Action):
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s is for %s, which apply does not carry out", in.ID, in.Action)}
	case p.Summary.Destroy > 0 && in.Action != "destroy":
		ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("the plan destroys %d resource(s), but intent %s is for %s; destroying needs an intent with action destroy", p.Summary.Destroy, in.ID, in.Action),
			Hint: "create an intent with --action destroy and have it approved"}
	default:
		v, verr := VerifyIntent(ctx, r.Gates, r.Policy, req.Intent, r.EnvName, p.SHA256)
		var ue *UsageError
		if errors.As(verr, &ue) {
			return nil, ue
		}
		if verr != nil {
			ig = gate.Result{Name: "intent", Detail: fmt.Sprintf("intent %s: %v", in.ID, verr), Hint: IntentHint(verr)}
		} else {
			approvers = v.Approvers
			ig.Detail = fmt.Sprintf("intent %s (%s on %s) requested by %s, approved by %s", in.ID, in.Action, in.Env, in.Requester, strings.Join(v.Approvers, ", "))
		}
	}
	if !r.add(ig) {
		return nil, nil
	}
	if ok, err := r.ConfigParity(ctx); !ok || err != nil {
		return nil, err
	}
	res, _, err := r.ParityGate(ctx, "plan", parity.FromPlan(p.JSON))
	if err != nil {
		return nil, err
	}
	if !r.add(res) {
		return nil, nil
	}
	if ok, err := r.confirm(req, p, approvers); !ok || err != nil {
		return nil, err
	}
	// Consume the intent before anything changes: a crash after this point
	// cannot let the intent be used twice.
	d := r.EngineDetails()
	for k, v := range map[string]any{"nonce": in.Nonce, "expires": in.Expires, "env": r.EnvName, "action": in.Action, "plan_sha256": p.SHA256} {
		d[k] = v
	}
	if req.CI {
		d["ci"] = ciDetails(r.CI)
	}
	r.Note("intent.consumed", in.ID, d)
	if err := r.cfg.Record(r.Events()); err != nil {
		return nil, err
	}
	return r.applyHeld(ctx, p, in)
}

// applyHeld applies the held, approved plan: the intent was consumed
// already. The held copy is hashed again at the moment of use (T30).
func (r *Run) applyHeld(ctx context.Context, p *Plan, in *intent.Intent) (*Applied, error) {
	if sum, err := manifest.HashFile(p.Path); err != nil || hex.EncodeToString(sum[:]) != p.SHA256 {
		return nil, fmt.Errorf("the approved plan changed after it was checked; nothing was applied")
	}
	var log bytes.Buffer
	tee := io.Writer(&log)
	if r.cfg.Stderr != nil {
		tee = io.MultiWriter(r.cfg.Stderr, &log)
	}
	_, applyErr := r.tf.Run(ctx, tee, tfrun.ApplyArgs(p.Path)...)
	out := &Applied{Plan: p, Log: log.Bytes(), Err: applyErr, LogName: "apply-" + in.ID + ".log"}
	if js, err := r.tf.Run(ctx, nil, tfrun.ShowJSONArgs("")...); err == nil {
		var st tfjson.State
		if err := st.UnmarshalJSON(js); err == nil && st.Values != nil && st.Values.RootModule != nil {
			for _, res := range allResources(st.Values.RootModule) {
				id, _ := res.AttributeValues["id"].(string)
				out.Resources = append(out.Resources, map[string]any{"address": res.Address, "type": res.Type, "id": id})
			}
		}
	}
	d := r.EngineDetails()
	for k, v := range map[string]any{"ok": applyErr == nil, "env": r.EnvName, "plan_sha256": p.SHA256, "log_sha256": sha256hex(out.Log),
		"add": p.Summary.Add, "change": p.Summary.Change, "destroy": p.Summary.Destroy, "resources": out.Resources} {
		d[k] = v
	}
	if err := r.cfg.Artifact(out.LogName, out.Log); err != nil {
		out.LogErr = err
	} else {
		d["log"] = out.LogName
	}
	if applyErr != nil {
		d["error"] = applyErr.Error()
	}
	if r.CI != nil {
		d["ci"] = ciDetails(r.CI)
	}
	r.Note("apply.result", in.ID, d)
	return out, nil
}

// confirm runs the two-step confirmation, or records that policy turned it
// off for the environment. A wrong answer is recorded and fails the gate.
// In CI there is no prompt: the intent, approved by approvers, and the
// runner the ci gate verified take its place.
func (r *Run) confirm(req ApplyRequest, p *Plan, approvers []string) (bool, error) {
	in := req.Intent.Intent
	if req.CI {
		if r.CI == nil {
			return r.add(gate.Result{Name: "confirm", Detail: "CI: the runner's identity was not verified", Hint: "the ci gate must pass before a CI apply"}), nil
		}
		return r.add(gate.Result{Name: "confirm", OK: true, Detail: fmt.Sprintf("CI: no prompt; intent %s approved by %s, runner %s verified by OIDC",
			in.ID, strings.Join(approvers, ", "), r.CI.Subject)}), nil
	}
	if !r.MachineGate("apply", in.ID) {
		return false, nil
	}
	if !r.Policy.Environment(r.EnvName).ConfirmRequired() {
		return r.add(gate.Result{Name: "confirm", OK: true, Detail: "confirmation is off for environment " + r.EnvName + " in policy.yaml"}), nil
	}
	if req.Confirm == nil {
		r.add(gate.Result{Name: "confirm", Detail: "no terminal to confirm on"})
		r.Note("apply.refused", in.ID, map[string]any{"reason": "no terminal", "env": r.EnvName})
		return false, NoTerminalError{}
	}
	summary := r.ConfirmSummary(p) + fmt.Sprintf("\nEnvironment %s, intent %s (%s)", r.EnvName, in.ID, in.Action)
	if err := req.Confirm(summary, in.Token()); err != nil {
		r.add(gate.Result{Name: "confirm", Detail: err.Error(), Hint: "nothing was changed; run apply again and type the token, then APPLY"})
		r.Note("apply.abort", in.ID, map[string]any{"reason": err.Error(), "env": r.EnvName})
		return false, nil
	}
	return r.add(gate.Result{Name: "confirm", OK: true, Detail: "token and APPLY typed on the terminal"}), nil
}

// MachineGate is the machine gate of the interactive path: when
// policy.yaml sets gates.certified_machine, this host's machine key must
// have a certification record that verifies against the registry the
// gates trusted, at the command's time. When it does, the machine key
// signs a statement of the command, environment, intent and time, which
// the audit trail keeps (machine.statement). It reports whether the gate
// passed, or was not required.
func (r *Run) MachineGate(command, intentID string) bool {
	// The interactive path is where a break-glass window relaxes a gate:
	// policy.yaml may refuse it outside one.
	if (command == "apply" || command == "bootstrap") && !r.BreakGlassGate(command) {
		return false
	}
	if r.Policy == nil || !r.Policy.Gates.CertifiedMachine {
		return true
	}
	fail := func(err error) bool {
		return r.add(gate.Result{Name: "machine", Detail: err.Error(), Hint: machine.Hint(err)})
	}
	dir, err := machine.KeyDir(r.cfg.Getenv)
	if err != nil {
		return fail(err)
	}
	k, err := machine.LoadKey(dir)
	if err != nil {
		return fail(err)
	}
	var reg *signers.Registry
	if r.Gates != nil {
		reg = r.Gates.Registry()
	}
	c, err := machine.Check(r.cfg.Repo, k, reg, r.cfg.Now)
	if err != nil {
		return fail(err)
	}
	st := machine.Statement{Command: command, Env: r.EnvName, Intent: intentID, Time: r.cfg.Now.UTC().Format(time.RFC3339)}
	payload, sig, err := k.SignStatement(st)
	if err != nil {
		return fail(fmt.Errorf("the machine key cannot sign: %v", err))
	}
	rec := c.Record
	r.Note("machine.statement", rec.Fingerprint, map[string]any{
		"fingerprint": rec.Fingerprint, "owner": rec.Owner, "hostname": rec.Hostname,
		"statement": string(payload), "signature": sig, "record": c.File,
	})
	return r.add(gate.Result{Name: "machine", OK: true, Detail: fmt.Sprintf("host %s (machine key %.16s…) certified for %s by %s until %s",
		rec.Hostname, rec.Fingerprint, rec.Owner, strings.Join(c.Certifiers, ", "), rec.Expires)})
}

// ConfirmSummary is what a person reads before confirming a change that
// applies the held plan p: one line per gate result so far ("PASS  name
// detail" or "FAIL  …"), one line per resource change of the plan
// (Change.String, e.g. "+ create terraform_data.one"), the plan's summary
// line and its SHA-256, each line ending in a newline but the last. The
// caller adds what the change is for (environment, intent) and passes the
// text to its Confirmer, as Apply does.
func (r *Run) ConfirmSummary(p *Plan) string {
	var b strings.Builder
	b.WriteString("Gates:\n")
	for _, res := range r.Results {
		status := "PASS"
		if !res.OK {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %-9s %s\n", status, res.Name, res.Detail)
	}
	b.WriteString("Resource changes:\n")
	changes := Changes(p.JSON)
	for _, c := range changes {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	if len(changes) == 0 {
		b.WriteString("  (none)\n")
	}
	fmt.Fprintf(&b, "%s\nPlan sha256:%s", p.Summary, p.SHA256)
	return b.String()
}

func allResources(m *tfjson.StateModule) []*tfjson.StateResource {
	out := append([]*tfjson.StateResource(nil), m.Resources...)
	for _, c := range m.ChildModules {
		out = append(out, allResources(c)...)
	}
	return out
}

// IntentHint says what to do about an intent that does not verify.
func IntentHint(err error) string {
	var (
		mm *intent.MismatchError
		ex *intent.ExpiredError
		us *intent.UsedError
		ap *intent.ApprovalError
		ck *intent.ClockError
		rq *intent.RequesterError
		ge *GateError
	)
	switch {
	case errors.As(err, &mm) && mm.Field == "commit":
		return "the governed content changed since the intent was made (commits that only add intents or revocations do not count): create a new intent and have it approved"
	case errors.As(err, &mm) && mm.Field == "manifest_sha256":
		return "governance/MANIFEST is not the one the intent was made for: create a new intent for the governed state as it is now, and have it approved"
	case errors.As(err, &mm):
		return "create an intent for this environment, action, commit and plan"
	case errors.As(err, &ex), errors.As(err, &us):
		return "create a new intent and have it approved again"
	case errors.As(err, &ap):
		return "more people with the required roles sign it: `groundzero intent sign FILE --key KEYSPEC`"
	case errors.As(err, &ck):
		return "fix the system clock"
	case errors.As(err, &rq):
		return "intents are created and signed by their requester: `groundzero intent new --key KEYSPEC`; do not edit the requester"
	case errors.As(err, &ge):
		return ge.Result.Hint
	}
	return ""
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
