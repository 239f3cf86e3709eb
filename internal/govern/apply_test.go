package govern_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
)

func change(addr string, mode tfjson.ResourceMode, actions ...tfjson.Action) *tfjson.ResourceChange {
	return &tfjson.ResourceChange{Address: addr, Mode: mode, Change: &tfjson.Change{Actions: actions}}
}

func samplePlan() *tfjson.Plan {
	m := tfjson.ManagedResourceMode
	return &tfjson.Plan{ResourceChanges: []*tfjson.ResourceChange{
		change("terraform_data.one", m, tfjson.ActionCreate),
		change("terraform_data.two", m, tfjson.ActionUpdate),
		change("terraform_data.three", m, tfjson.ActionDelete),
		change("terraform_data.four", m, tfjson.ActionDelete, tfjson.ActionCreate),
		change("terraform_data.five", m, tfjson.ActionCreate, tfjson.ActionDelete),
		change("terraform_data.same", m, tfjson.ActionNoop),
		change("data.external.read", tfjson.DataResourceMode, tfjson.ActionRead),
		change("terraform_data.gone", m, tfjson.ActionForget),
		nil,
		{Address: "terraform_data.no_change"},
	}}
}

func TestChanges(t *testing.T) {
	var got []string
	for _, c := range govern.Changes(samplePlan()) {
		got = append(got, c.String())
	}
	want := []string{
		"+ create terraform_data.one",
		"~ update terraform_data.two",
		"- destroy terraform_data.three",
		"-/+ replace terraform_data.four",
		"+/- replace terraform_data.five",
		"<= read data.external.read",
		". forget terraform_data.gone",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Changes(plan) = %q, want %q", got, want)
	}
	if s := govern.SummaryOf(samplePlan()).String(); s != "Plan: 3 to add, 1 to change, 3 to destroy." {
		t.Errorf("SummaryOf(plan) = %q", s)
	}
}

func TestConfirmSummary(t *testing.T) {
	r := &govern.Run{Results: []gate.Result{
		{Name: "tag", OK: true, Detail: "v1 (0123456789ab) signed with openpgp by alice (release); HEAD adds 1 commit that only changes signed records"},
		{Name: "plan", OK: true, Detail: "5 resource(s) meet the plan policy of environment dev"},
	}}
	p := &govern.Plan{SHA256: strings.Repeat("a", 64), JSON: samplePlan(), Summary: govern.SummaryOf(samplePlan())}
	got := r.ConfirmSummary(p)
	want := "Gates:\n" +
		"PASS  tag       v1 (0123456789ab) signed with openpgp by alice (release); HEAD adds 1 commit that only changes signed records\n" +
		"PASS  plan      5 resource(s) meet the plan policy of environment dev\n" +
		"Resource changes:\n" +
		"  + create terraform_data.one\n  ~ update terraform_data.two\n  - destroy terraform_data.three\n" +
		"  -/+ replace terraform_data.four\n  +/- replace terraform_data.five\n  <= read data.external.read\n  . forget terraform_data.gone\n" +
		"Plan: 3 to add, 1 to change, 3 to destroy.\n" +
		"Plan sha256:" + strings.Repeat("a", 64)
	if got != want {
		t.Errorf("ConfirmSummary =\n%s\nwant\n%s", got, want)
	}
	empty := &govern.Plan{SHA256: strings.Repeat("b", 64), JSON: &tfjson.Plan{}}
	if got := (&govern.Run{}).ConfirmSummary(empty); !strings.Contains(got, "Resource changes:\n  (none)\nPlan: 0 to add") {
		t.Errorf("ConfirmSummary of an empty plan = %q, want (none) listed", got)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// The evidence an approver reviews must be the plan the intent names and
// the rendering its audit entry recorded (T30).
func TestPlanEvidence(t *testing.T) {
	plan := []byte("PK\x03\x04 a saved plan")
	rendering := []byte(`{"format_version":"1.2","terraform_version":"1.12.6","resource_changes":[{"address":"terraform_data.one","mode":"managed","type":"terraform_data","name":"one","change":{"actions":["create"]}}]}`)
	good := func() *govern.PlanEvidence {
		return &govern.PlanEvidence{SHA256: sum(plan), Plan: plan, JSON: rendering, Recorded: []string{sum(rendering)}}
	}
	p, err := good().Check()
	if err != nil || len(govern.Changes(p)) != 1 {
		t.Fatalf("Check(good evidence) = %v, %v", p, err)
	}
	twice := good()
	twice.Recorded = append(twice.Recorded, sum(rendering))
	if _, err := twice.Check(); err != nil {
		t.Errorf("Check with the rendering recorded twice = %v", err)
	}
	other := []byte(`{"format_version":"1.2","resource_changes":[]}`)
	for name, c := range map[string]struct {
		mutate func(*govern.PlanEvidence)
		want   string
	}{
		"plan swapped":          {func(e *govern.PlanEvidence) { e.Plan = []byte("another plan") }, ".tfplan hashes to sha256:"},
		"rendering swapped":     {func(e *govern.PlanEvidence) { e.JSON = other }, "but the plan's audit entry recorded sha256:" + sum(rendering)},
		"nothing recorded":      {func(e *govern.PlanEvidence) { e.Recorded = nil }, "no plan entry in the audit trail records a rendering of it"},
		"two renderings":        {func(e *govern.PlanEvidence) { e.Recorded = append(e.Recorded, sum(other)) }, "records 2 different renderings"},
		"recorded, not a plan":  {func(e *govern.PlanEvidence) { e.JSON = []byte("{}"); e.Recorded = []string{sum([]byte("{}"))} }, "not plan JSON"},
		"rendering of no bytes": {func(e *govern.PlanEvidence) { e.JSON = nil }, "hashes to sha256:" + sum(nil)},
	} {
		e := good()
		c.mutate(e)
		_, err := e.Check()
		var ee *govern.EvidenceError
		if !errors.As(err, &ee) || ee.SHA256 != sum(plan) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "plan sha256:"+sum(plan)) {
			t.Errorf("%s: Check = %v, want an *EvidenceError naming the plan's hash and %q", name, err, c.want)
		}
	}
	if a, b := govern.PlanArtifacts("abc"); a != "plan-abc.tfplan" || b != "plan-abc.json" {
		t.Errorf("PlanArtifacts(abc) = %s, %s", a, b)
	}
}
