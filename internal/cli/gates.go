package cli

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/trail"
)

const seenAction = "signers.seen"

// history is what commands read back from the audit trail, in one pass.
type history struct {
	seen   *gate.Seen       // newest registry version recorded as in force
	used   map[string]int64 // consumed intent nonces, with the seq that consumed each
	newest time.Time        // time of the newest checkpoint
}

var (
	seenNeedle     = []byte(`"action":"` + seenAction + `"`)
	consumedNeedle = []byte(`"action":"intent.consumed"`)
)

// history reads the trail once per command (appending forgets it).
func (a *app) history(store trail.Store) (*history, error) {
	if h := a.histories[store]; h != nil {
		return h, nil
	}
	h := &history{used: map[string]int64{}}
	err := trail.Scan(a.ctx, store, nil, func(line []byte) error {
		if !bytes.Contains(line, seenNeedle) && !bytes.Contains(line, consumedNeedle) {
			return nil
		}
		e, err := audit.ParseEntry(line)
		if err != nil {
			return nil
		}
		switch e.Action {
		case seenAction:
			var d struct {
				Version int    `json:"version"`
				SHA256  string `json:"sha256"`
			}
			raw, _ := json.Marshal(e.Details)
			if json.Unmarshal(raw, &d) == nil && d.Version >= 1 && len(d.SHA256) == 64 && (h.seen == nil || d.Version >= h.seen.Version) {
				h.seen = &gate.Seen{Version: d.Version, SHA256: d.SHA256, Seq: e.Seq}
			}
		case "intent.consumed":
			if n, ok := e.Details["nonce"].(string); ok {
				if _, dup := h.used[n]; !dup {
					h.used[n] = e.Seq
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	cps, err := store.Checkpoints(a.ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cps {
		if cp, err := audit.ParseCheckpoint(c.Body); err == nil && cp.Time.After(h.newest) {
			h.newest = cp.Time
		}
	}
	if a.histories == nil {
		a.histories = map[trail.Store]*history{}
	}
	a.histories[store] = h
	return h, nil
}

// gates loads the gate environment, with the registry version the audit
// trail last recorded.
func (a *app) gates(r *repo.Repo, trustRoot string, strict bool) (*gate.Env, error) {
	store, err := a.openStore(r, "")
	if err != nil {
		return nil, err
	}
	h, err := a.history(store)
	if err != nil {
		return nil, usage(err, "the evidence store must be readable")
	}
	return gate.Load(r, a.now, trustRoot, strict, h.seen), nil
}

// finishGates prints the results, records each one (and the registry version
// now in force) in the audit trail, and returns the command's result.
func (a *app) finishGates(r *repo.Repo, env *gate.Env, format string, results []gate.Result) error {
	rec := a.recorder(r)
	for _, res := range results {
		rec.add("gate", res.Name, map[string]any{"ok": res.OK, "detail": res.Detail})
	}
	if env.Trusted && (env.Seen == nil || env.Report.Version != env.Seen.Version) {
		rec.add(seenAction, repo.SignersFile, map[string]any{"version": env.Report.Version, "sha256": env.Report.Hash})
	}
	return rec.flush(a.report(format, results))
}
