package cli

import (
	"encoding/json"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/trail"
)

const seenAction = "signers.seen"

// lastSeen finds the newest registry version the trail recorded as in force.
func (a *app) lastSeen(store trail.Store) (*gate.Seen, error) {
	var seen *gate.Seen
	err := trail.Scan(a.ctx, store, []byte(`"action":"`+seenAction+`"`), func(line []byte) error {
		e, err := audit.ParseEntry(line)
		if err != nil || e.Action != seenAction {
			return nil
		}
		var d struct {
			Version int    `json:"version"`
			SHA256  string `json:"sha256"`
		}
		raw, _ := json.Marshal(e.Details)
		if json.Unmarshal(raw, &d) != nil || d.Version < 1 || len(d.SHA256) != 64 {
			return nil
		}
		if seen == nil || d.Version >= seen.Version {
			seen = &gate.Seen{Version: d.Version, SHA256: d.SHA256, Seq: e.Seq}
		}
		return nil
	})
	return seen, err
}

// gates loads the gate environment, with the registry version the audit
// trail last recorded.
func (a *app) gates(r *repo.Repo, trustRoot string, strict bool) (*gate.Env, error) {
	store, err := a.openStore(r, "")
	if err != nil {
		return nil, err
	}
	seen, err := a.lastSeen(store)
	if err != nil {
		return nil, usage(err, "the evidence store must be readable")
	}
	return gate.Load(r, a.now, trustRoot, strict, seen), nil
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
