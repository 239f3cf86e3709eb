package govern

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// ErrNoState is what StateObjects.Get wraps when the object does not exist.
var ErrNoState = errors.New("no such state object")

// StateObjects reads and writes state objects in S3-API stores: the drill
// copies the newest state version from the real store into the scratch
// store through it.
type StateObjects interface {
	// Get returns the newest version of the object and its version id
	// ("" when the store keeps no versions).
	Get(ctx context.Context, spec backend.Spec, key string) (data []byte, version string, err error)
	// Put writes the object.
	Put(ctx context.Context, spec backend.Spec, key string, data []byte) error
}

// Scratch is the store a drill rebuilds into: s3://BUCKET/PREFIX with the
// query parameters endpoint=URL and region=NAME.
type Scratch struct {
	URL      string // as given, for the record
	Bucket   string
	Prefix   string
	Endpoint string
	Region   string
}

// ParseScratch reads a scratch store URL.
func ParseScratch(raw string) (Scratch, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return Scratch{}, fmt.Errorf("--scratch %q is not s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME]", redacted(raw))
	}
	q := u.Query()
	for k := range q {
		if k != "endpoint" && k != "region" && k != "path_style" {
			return Scratch{}, fmt.Errorf("--scratch: unknown parameter %q (endpoint, region and path_style are known)", k)
		}
	}
	s := Scratch{URL: "s3://" + u.Host + u.EscapedPath(), Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: q.Get("endpoint"), Region: q.Get("region")}
	if s.Endpoint != "" {
		s.URL += "?endpoint=" + s.Endpoint
	}
	if s.Prefix != "" && (path.Clean(s.Prefix) != s.Prefix || strings.HasPrefix(s.Prefix, "..")) {
		return Scratch{}, fmt.Errorf("--scratch: prefix %q is not a clean key prefix", s.Prefix)
	}
	return s, nil
}

func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// DrillRequest is what `groundzero drill` rehearses.
type DrillRequest struct {
	Scratch Scratch
	// Bundle is the verified offline bundle the repository was restored
	// from: its SHA-256 and tag.
	BundleSHA256 string
	Tag          string
	// EvidenceStore is the URL of the store the drill's evidence goes to.
	EvidenceStore string
	Open          func(context.Context, backend.Spec) (backend.Store, error)
	State         StateObjects
}

// Drilled is what a drill found.
type Drilled struct {
	Lock          *lock.Lock
	Scratch       backend.Spec
	SourceVersion string
	Serial        int64
	Lineage       string
	// Drift is set when the plan shows changes: the restored configuration
	// and the restored state do not agree.
	Drift    bool
	Changes  []string // the resources the plan would change, as "action address"
	PlanText []byte   // the plan's output, kept as evidence
	Artifact string   // its name in the evidence store
}

// DriftError: the rehearsed rebuild does not match the state.
type DriftError struct{ Changes []string }

func (e *DriftError) Error() string {
	return fmt.Sprintf("drift: the plan against the restored state shows %d change(s): %s", len(e.Changes), strings.Join(e.Changes, ", "))
}

// DrillPlanArgs builds the drill's plan: a saved plan with
// -detailed-exitcode (0 no changes, 2 changes), refreshed from the real
// resources, never locking out anyone but the scratch store.
func DrillPlanArgs(out string) []string {
	return append(tfrun.PlanArgs(out, false), "-detailed-exitcode")
}

// Drill rehearses a rebuild of the environment from the restored repository
// (the run's repository, after the static gates passed) into a scratch
// store: it provisions and probes the scratch store with the environment's
// own policy, copies the newest state version from the real store the
// signed lock names, renders backend.tf for the scratch store in the
// restored copy, and runs init and a plan with -detailed-exitcode. A plan
// with changes is drift: the drill returns a *DriftError with what it
// found. Every step is noted for the audit trail; the caller records the
// drill entry itself.
func (r *Run) Drill(ctx context.Context, req DrillRequest) (*Drilled, error) {
	env := r.Policy.Environment(r.EnvName)
	lockRel := path.Join(env.Dir, repo.BackendLockName)
	data, err := r.cfg.Repo.ReadFile(lockRel, lock.MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, usage(fmt.Errorf("environment %s has no %s at tag %s: it was never bootstrapped, so there is no state to rehearse", r.EnvName, lockRel, req.Tag),
			"bundle a tag that carries the signed backend lock")
	}
	if err != nil {
		return nil, usage(err, "")
	}
	l, err := lock.Parse(lockRel, data)
	if err != nil {
		return nil, usage(err, "")
	}
	out := &Drilled{Lock: l}
	if !backend.S3API(l.Backend) {
		return nil, usage(fmt.Errorf("environment %s keeps its state in a %s store; the drill copies state between S3-API stores (s3, minio, spaces, oci)", r.EnvName, l.Backend), "")
	}
	spec, required, err := backend.FromPolicy(r.Policy, r.EnvName)
	if err != nil {
		return nil, usage(err, "complete the backend section of governance/policy.yaml")
	}
	real := spec
	real.Bucket, real.Endpoint, real.Region = l.Bucket, l.Endpoint, l.Region
	if real.Region == "" {
		real.Region = spec.Region
	}
	sc := spec
	sc.Bucket, sc.Prefix = req.Scratch.Bucket, req.Scratch.Prefix
	if req.Scratch.Endpoint != "" {
		sc.Endpoint = req.Scratch.Endpoint
	}
	if req.Scratch.Region != "" {
		sc.Region = req.Scratch.Region
	}
	sc.Replica = nil
	sc.Key.ID = l.KeyID
	out.Scratch = sc
	if sc.Bucket == l.Bucket || sc.Bucket == spec.Bucket {
		r.add(gate.Result{Name: "scratch", Detail: fmt.Sprintf("%s is the real state store of environment %s (%s records bucket %s): a drill never writes there", req.Scratch.URL, r.EnvName, lockRel, l.Bucket),
			Hint: "name an empty scratch bucket of its own with --scratch s3://BUCKET/PREFIX"})
		return out, nil
	}
	if u, err := url.Parse(req.EvidenceStore); err == nil && (u.Scheme == "s3" || u.Scheme == "gs") && u.Host == sc.Bucket {
		r.add(gate.Result{Name: "scratch", Detail: fmt.Sprintf("%s is the evidence store's bucket: a drill never writes state there", req.Scratch.URL),
			Hint: "name an empty scratch bucket of its own with --scratch s3://BUCKET/PREFIX"})
		return out, nil
	}
	r.add(gate.Result{Name: "scratch", OK: true, Detail: fmt.Sprintf("%s: bucket %s, state %s; the real store is %s/%s", req.Scratch.URL, sc.Bucket, sc.StateKey(), l.Bucket, l.StateKey)})

	// The scratch store, made and probed as bootstrap makes the real one.
	if _, _, err := r.provision(ctx, "drill", sc, required, req.Open, "drill"); err != nil {
		var pe *ProbeError
		if errors.As(err, &pe) {
			return out, nil
		}
		return out, err
	}

	// The newest state version, from the store the signed lock names.
	state, version, err := req.State.Get(ctx, real, l.StateKey)
	if err != nil {
		r.Note("drill.state", l.StateKey, map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
		if errors.Is(err, ErrNoState) {
			return out, usage(fmt.Errorf("the real store holds no state for environment %s (bucket %s, key %s): there is nothing to rehearse", r.EnvName, l.Bucket, l.StateKey),
				"a bootstrap without --plan leaves no state: apply the environment once, then run the same drill again")
		}
		return out, fmt.Errorf("reading the state %s from bucket %s: %w", l.StateKey, l.Bucket, err)
	}
	out.SourceVersion = version
	var head struct {
		Serial  int64  `json:"serial"`
		Lineage string `json:"lineage"`
	}
	if err := json.Unmarshal(state, &head); err == nil {
		out.Serial, out.Lineage = head.Serial, head.Lineage
	}
	if err := req.State.Put(ctx, sc, sc.StateKey(), state); err != nil {
		r.Note("drill.state", sc.StateKey(), map[string]any{"env": r.EnvName, "ok": false, "error": err.Error()})
		return out, fmt.Errorf("writing the state to the scratch store %s: %w", sc.Bucket, err)
	}
	r.Note("drill.state", sc.StateKey(), map[string]any{"env": r.EnvName, "ok": true, "from": l.Bucket + "/" + l.StateKey, "from_version": version,
		"to": sc.Bucket + "/" + sc.StateKey(), "serial": out.Serial, "lineage": out.Lineage, "sha256": sha256hex(state)})

	// backend.tf for the scratch store, from the template the lock names.
	scratchLock := *l
	scratchLock.Bucket, scratchLock.StateKey, scratchLock.Endpoint, scratchLock.Region = sc.Bucket, sc.StateKey(), sc.Endpoint, sc.Region
	rendered, err := scratchLock.Render()
	if err != nil {
		return out, usage(err, "")
	}
	if err := r.cfg.Repo.WriteFile(path.Join(env.Dir, "backend.tf"), rendered); err != nil {
		return out, err
	}

	// init and plan against the scratch store.
	if ok, err := r.Engine(ctx); !ok || err != nil {
		return out, err
	}
	if err := r.Init(ctx); err != nil {
		return out, err
	}
	planFile := filepath.Join(r.tf.DataDir, "drill.tfplan")
	text, perr := r.tf.Run(ctx, r.cfg.Stderr, DrillPlanArgs(planFile)...)
	out.PlanText = text
	if perr != nil {
		var te *tfrun.Error
		if !errors.As(perr, &te) {
			return out, perr
		}
		if _, err := os.Stat(planFile); err != nil {
			out.PlanText = []byte(te.Output)
			r.keepDrillPlan(out, req)
			return out, perr // the plan failed: no plan file
		}
	}
	if err := r.keepDrillPlan(out, req); err != nil {
		return out, fmt.Errorf("keeping the plan output as evidence: %w", err)
	}
	js, err := r.tf.Run(ctx, nil, tfrun.ShowJSONArgs(planFile)...)
	if err != nil {
		return out, err
	}
	out.Changes, err = PlanChanges(js)
	if err != nil {
		return out, err
	}
	out.Drift = len(out.Changes) > 0
	if out.Drift != (perr != nil) {
		return out, fmt.Errorf("the plan's exit code and its saved plan disagree about changes")
	}
	if out.Drift {
		return out, &DriftError{out.Changes}
	}
	return out, nil
}

// keepDrillPlan stores the plan's output in the evidence store, once.
func (r *Run) keepDrillPlan(d *Drilled, req DrillRequest) error {
	if r.cfg.Artifact == nil {
		return nil
	}
	sum := req.BundleSHA256
	if len(sum) > 12 {
		sum = sum[:12]
	}
	name := fmt.Sprintf("drill-%s-%s-%s.log", r.EnvName, r.cfg.Now.UTC().Format("20060102T150405Z"), sum)
	if err := r.cfg.Artifact(name, d.PlanText); err != nil {
		return err
	}
	d.Artifact = name
	return nil
}

// PlanChanges lists the resource changes (other than no-op and read) and
// the drift outside OpenTofu that a saved plan's JSON shows.
func PlanChanges(planJSON []byte) ([]string, error) {
	var p tfjson.Plan
	dec := json.NewDecoder(bytes.NewReader(planJSON))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("reading the plan: %v", err)
	}
	var out []string
	for _, rc := range p.ResourceChanges {
		if rc.Change == nil || rc.Change.Actions.NoOp() || rc.Change.Actions.Read() {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s", actionWord(rc.Change.Actions), rc.Address))
	}
	for _, rc := range p.ResourceDrift {
		if rc.Change == nil || rc.Change.Actions.NoOp() {
			continue
		}
		out = append(out, fmt.Sprintf("drifted (%s outside OpenTofu) %s", actionWord(rc.Change.Actions), rc.Address))
	}
	return out, nil
}

func actionWord(a tfjson.Actions) string {
	switch {
	case a.Create():
		return "create"
	case a.Delete():
		return "delete"
	case a.Update():
		return "update"
	case a.Replace():
		return "replace"
	}
	var s []string
	for _, x := range a {
		s = append(s, string(x))
	}
	return strings.Join(s, "+")
}

// DrillDetails are the details of the drill's audit entry.
func DrillDetails(env string, req DrillRequest, d *Drilled, result string) map[string]any {
	det := map[string]any{
		"env": env, "scratch": req.Scratch.URL, "bundle_sha256": req.BundleSHA256, "tag": req.Tag, "result": result,
		"controls": []string{"ISO 27001:2013 A.17.1.3", "ISO 27001:2022 A.5.30"},
	}
	if d != nil {
		det["serial"], det["lineage"], det["state_version"] = d.Serial, d.Lineage, d.SourceVersion
		det["drift"] = d.Drift
		det["changes"] = d.Changes
		if d.Changes == nil {
			det["changes"] = []string{}
		}
		if d.Lock != nil {
			det["state"] = d.Lock.Bucket + "/" + d.Lock.StateKey
		}
		if d.Artifact != "" {
			det["plan_artifact"] = d.Artifact
			det["plan_sha256"] = sha256hex(d.PlanText)
		}
	}
	return det
}
