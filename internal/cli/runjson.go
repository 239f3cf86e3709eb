package cli

import (
	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
)

// formatNone prints no gate results: the command prints its own document.
const formatNone = "none"

// runDoc is what `plan --format json` and `apply --format json` print: one
// JSON object on stdout, also when a gate fails (ok false; the exit code is
// as without --format json). Field names are stable; a field is added, never
// renamed.
type runDoc struct {
	Command string        `json:"command"` // "plan" or "apply"
	OK      bool          `json:"ok"`      // every gate passed and the command did what it was asked
	Env     string        `json:"env"`
	Gates   []gate.Result `json:"gates"` // in the order they ran: name, ok, detail, hint
	// Plan is the saved (plan) or applied (apply) plan; absent when a gate
	// stopped the command before there was one.
	Plan *planDoc `json:"plan,omitempty"`
	// Intent is the intent apply acted under (apply only).
	Intent *intentDoc `json:"intent,omitempty"`
	// Applied is what apply did (apply only, once OpenTofu ran).
	Applied *appliedDoc `json:"applied,omitempty"`
	// Entries are the audit entries the command appended, as the trail
	// holds them; empty when nothing could be recorded.
	Entries []*audit.Entry `json:"entries"`
	// Error is the command's error as stderr prints it, "" when ok.
	Error string `json:"error,omitempty"`
}

type planDoc struct {
	File      string      `json:"file,omitempty"` // repository-relative when inside it
	SHA256    string      `json:"sha256"`
	Summary   summaryDoc  `json:"summary"`
	Changes   []changeDoc `json:"changes"`
	Artifacts []string    `json:"artifacts,omitempty"` // evidence names (plan)
}

type summaryDoc struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

type changeDoc struct {
	Symbol  string `json:"symbol"` // +, ~, -, -/+, +/-, <=, .
	Action  string `json:"action"` // create, update, destroy, replace, read, forget
	Address string `json:"address"`
}

type intentDoc struct {
	ID         string `json:"id"`
	File       string `json:"file"`
	Env        string `json:"env"`
	Action     string `json:"action"`
	Requester  string `json:"requester"`
	Commit     string `json:"commit"`
	PlanSHA256 string `json:"plan_sha256,omitempty"`
	Expires    string `json:"expires"`
}

type appliedDoc struct {
	OK        bool   `json:"ok"`
	Resources int    `json:"resources"` // in state afterwards
	Log       string `json:"log,omitempty"`
	Error     string `json:"error,omitempty"`
}

func newPlanDoc(p *govern.Plan, file string) *planDoc {
	d := &planDoc{File: file, SHA256: p.SHA256, Artifacts: p.Artifacts, Changes: []changeDoc{},
		Summary: summaryDoc{Add: p.Summary.Add, Change: p.Summary.Change, Destroy: p.Summary.Destroy}}
	for _, c := range govern.Changes(p.JSON) {
		d.Changes = append(d.Changes, changeDoc{Symbol: c.Symbol, Action: c.Action, Address: c.Address})
	}
	return d
}

func newIntentDoc(f govern.IntentFile) *intentDoc {
	in := f.Intent
	if in == nil {
		return nil
	}
	return &intentDoc{ID: in.ID, File: f.Rel, Env: in.Env, Action: in.Action, Requester: in.Requester,
		Commit: in.Commit, PlanSHA256: in.PlanSHA256, Expires: in.Expires}
}

// finishRunJSON is finishRun without printing the gate results: it records
// the run's events and returns the entries appended with the command's
// result.
func (a *app) finishRunJSON(run *govern.Run, result error) ([]*audit.Entry, error) {
	if err := a.report(formatNone, run.Results); err != nil && result == nil {
		result = err
	}
	if run.Gates == nil {
		return nil, govErr(result)
	}
	rec := a.runRecorder(run.Gates.Repo, run)
	for _, ev := range run.Events() {
		rec.add(ev.Action, ev.Subject, ev.Details)
	}
	err := rec.flush(govErr(result))
	return rec.appended, err
}

// printRunDoc completes doc with the gates, entries and result, prints it,
// and returns result.
func (a *app) printRunDoc(doc *runDoc, run *govern.Run, entries []*audit.Entry, result error) error {
	doc.Env = run.EnvName
	doc.Gates = run.Results
	if doc.Gates == nil {
		doc.Gates = []gate.Result{}
	}
	doc.Entries = entries
	if doc.Entries == nil {
		doc.Entries = []*audit.Entry{}
	}
	doc.OK = result == nil
	if result != nil {
		doc.Error = result.Error()
	}
	if err := a.printJSON(doc); err != nil {
		return err
	}
	return result
}
