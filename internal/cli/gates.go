package cli

import (
	"errors"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// anchor reads the freshness anchor, the authoritative evidence store that
// policy.yaml names, verified in full, once per command (appending forgets
// it). Checkpoints are judged against the repository's current registry;
// the registry chain itself is judged afterwards, with the anchor's witness
// times, and nothing counts unless it verifies.
func (a *app) anchor(r *repo.Repo) (*anchor.Index, error) {
	store, err := a.openStore(r, "")
	if err != nil {
		return nil, err
	}
	if ix := a.anchors[store]; ix != nil {
		return ix, nil
	}
	pol := a.evidencePolicy(r)
	cfg := trail.VerifyConfig{Now: a.now}
	if pol != nil {
		cfg.Roles = pol.Gates.Checkpoint.Roles
	}
	if chain, err := signers.Load(r); err == nil {
		cfg.Registry = chain.Current()
	}
	ix, err := anchor.Read(a.ctx, store, cfg, a.authoritative(store, pol))
	if err != nil {
		return nil, err
	}
	if a.anchors == nil {
		a.anchors = map[trail.Store]*anchor.Index{}
	}
	a.anchors[store] = ix
	return ix, nil
}

// authoritative reports whether a store can anchor freshness: object
// storage under Object Lock, or whose lack of it policy.yaml waives.
func (a *app) authoritative(s trail.Store, pol *policy.Policy) bool {
	ol, ok := s.(interface{ ObjectLock() bool })
	if !ok {
		return false
	}
	return ol.ObjectLock() || (pol != nil && pol.Evidence.Waives(policy.CapObjectLock) != nil)
}

// gates loads the gate environment against the freshness anchor. A store
// that cannot be opened is a usage error; one that cannot be read or does
// not verify fails the anchor gate.
func (a *app) gates(r *repo.Repo, trustRoot string, strict bool) (*gate.Env, error) {
	ix, err := a.anchor(r)
	var e *Error
	if errors.As(err, &e) && e.Code == ExitUsage {
		return nil, e
	}
	env := gate.Load(r, a.now, trustRoot, strict, ix, err)
	env.StorePinned = a.getenv("GROUNDZERO_EVIDENCE_STORE") != ""
	return env, nil
}

// finishGates prints the results, records each one (and the registry version
// now in force) in the audit trail, and returns the command's result.
func (a *app) finishGates(r *repo.Repo, env *gate.Env, format string, results []gate.Result) error {
	rec := a.recorder(r)
	for _, res := range results {
		rec.add("gate", res.Name, map[string]any{"ok": res.OK, "detail": res.Detail})
	}
	for _, ev := range govern.Seen(env) {
		rec.add(ev.Action, ev.Subject, ev.Details)
	}
	return rec.flush(a.report(format, results))
}
