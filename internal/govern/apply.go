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

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// Summary counts what a plan does.
type Summary struct {
	Add, Change, Destroy int
}

func (s Summary) String() string {
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", s.Add, s.Change, s.Destroy)
}

func summarise(p *tfjson.Plan) Summary {
	var s Summary
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

// Plan is a saved plan held privately: the bytes that were hashed are the
// bytes that are shown, checked and applied (T30).
type Plan struct {
	Path    string // the private copy (0600, in a private directory)
	SHA256  string
	Summary Summary
	JSON    *tfjson.Plan
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
	p.Summary = summarise(p.JSON)
	return nil
}

// MakePlan is what `groundzero plan` runs after the static gates: the engine
// gate, the parity policy on the configuration, `tofu init` and `tofu plan`
// into the private working directory, and the parity policy on the plan. The
// plan is copied to out, and its SHA-256 recorded.
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
	for k, v := range map[string]any{"plan_sha256": p.SHA256, "add": p.Summary.Add, "change": p.Summary.Change, "destroy": p.Summary.Destroy, "file": rel, "ok": res.OK} {
		d[k] = v
	}
	r.Note("plan", r.EnvName, d)
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
	head, err := gittag.Head(ctx, g.Repo)
	if err != nil {
		return nil, usage(err, "")
	}
	sigs, err := sigfile.Load(g.Repo, f.Rel)
	if err != nil {
		return nil, err
	}
	maxTTL, _ := policy.ParseDuration(pol.Gates.Intent.MaxTTL)
	in := f.Intent
	ix := g.Anchor
	return intent.Verify(in, f.Data, sigs, g.Registry(), pol.Gates.Approvals[in.Action], intent.Expect{
		Env: env, Action: in.Action, Commit: head, PlanSHA256: planSHA, Now: g.Now, TrailTime: ix.NewestCheckpoint(), MaxTTL: maxTTL,
		Used: ix.UsedSeq,
	})
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
// plan, the two-step confirmation, then the intent is consumed (recorded
// durably) before OpenTofu applies exactly the held bytes. It returns nil
// Applied when a gate stopped it.
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
	if ok, err := r.confirm(req, p); !ok || err != nil {
		return nil, err
	}
	// Consume the intent before anything changes: a crash after this point
	// cannot let the intent be used twice.
	d := r.EngineDetails()
	for k, v := range map[string]any{"nonce": in.Nonce, "expires": in.Expires, "env": r.EnvName, "action": in.Action, "plan_sha256": p.SHA256} {
		d[k] = v
	}
	r.Note("intent.consumed", in.ID, d)
	if err := r.cfg.Record(r.Events()); err != nil {
		return nil, err
	}
	// The held copy is hashed again at the moment of use.
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
	d = r.EngineDetails()
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
	r.Note("apply.result", in.ID, d)
	return out, nil
}

// confirm runs the two-step confirmation, or records that policy turned it
// off for the environment. A wrong answer is recorded and fails the gate.
func (r *Run) confirm(req ApplyRequest, p *Plan) (bool, error) {
	in := req.Intent.Intent
	if !r.Policy.Environment(r.EnvName).ConfirmRequired() {
		return r.add(gate.Result{Name: "confirm", OK: true, Detail: "confirmation is off for environment " + r.EnvName + " in policy.yaml"}), nil
	}
	if req.Confirm == nil {
		r.add(gate.Result{Name: "confirm", Detail: "no terminal to confirm on"})
		r.Note("apply.refused", in.ID, map[string]any{"reason": "no terminal", "env": r.EnvName})
		return false, NoTerminalError{}
	}
	summary := fmt.Sprintf("%s\nEnvironment %s, intent %s (%s), plan sha256:%s", p.Summary, r.EnvName, in.ID, in.Action, p.SHA256)
	if err := req.Confirm(summary, in.Token()); err != nil {
		r.add(gate.Result{Name: "confirm", Detail: err.Error(), Hint: "nothing was changed; run apply again and type the token, then APPLY"})
		r.Note("apply.abort", in.ID, map[string]any{"reason": err.Error(), "env": r.EnvName})
		return false, nil
	}
	return r.add(gate.Result{Name: "confirm", OK: true, Detail: "token and APPLY typed on the terminal"}), nil
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
