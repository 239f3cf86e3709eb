package govern

import (
	"context"
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
)

func TestParseScratch(t *testing.T) {
	s, err := ParseScratch("s3://scratch/drill/dev?endpoint=http://127.0.0.1:9000&region=eu-west-1")
	if err != nil {
		t.Fatalf("ParseScratch = %v", err)
	}
	want := Scratch{URL: "s3://scratch/drill/dev?endpoint=http://127.0.0.1:9000", Bucket: "scratch", Prefix: "drill/dev", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1"}
	if s != want {
		t.Fatalf("ParseScratch = %+v, want %+v", s, want)
	}
	for _, bad := range []string{
		"gs://scratch/x",
		"s3:///x",
		"s3://user:secret@scratch/x",
		"s3://scratch/x?token=abc",
		"s3://scratch/a/../b",
		"file:///tmp/x",
	} {
		_, err := ParseScratch(bad)
		if err == nil {
			t.Errorf("ParseScratch(%q) = nil, want an error", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseScratch(%q) = %v: the error echoes the credential", bad, err)
		}
	}
}

func TestDrillPlanArgs(t *testing.T) {
	got := DrillPlanArgs("/tmp/d/drill.tfplan")
	want := []string{"plan", "-input=false", "-no-color", "-out=/tmp/d/drill.tfplan", "-detailed-exitcode"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DrillPlanArgs = %q, want %q", got, want)
	}
}

func TestPlanChanges(t *testing.T) {
	const plan = `{"format_version":"1.2","resource_changes":[
	 {"address":"terraform_data.one","type":"terraform_data","name":"one","change":{"actions":["no-op"]}},
	 {"address":"data.x.y","type":"x","name":"y","change":{"actions":["read"]}},
	 {"address":"terraform_data.two","type":"terraform_data","name":"two","change":{"actions":["create"]}},
	 {"address":"terraform_data.three","type":"terraform_data","name":"three","change":{"actions":["delete","create"]}}],
	 "resource_drift":[{"address":"local_file.f","type":"local_file","name":"f","change":{"actions":["delete"]}}]}`
	got, err := PlanChanges([]byte(plan))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create terraform_data.two", "replace terraform_data.three", "drifted (delete outside OpenTofu) local_file.f"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PlanChanges = %q, want %q", got, want)
	}
	none, err := PlanChanges([]byte(`{"format_version":"1.2","resource_changes":[{"address":"a.b","change":{"actions":["no-op"]}}]}`))
	if err != nil || len(none) != 0 {
		t.Fatalf("PlanChanges(no-op) = %q, %v, want none", none, err)
	}
	if _, err := PlanChanges([]byte("not json")); err == nil {
		t.Fatalf("PlanChanges(not json) = nil error")
	}
}

func TestDrillDetails(t *testing.T) {
	req := DrillRequest{Scratch: Scratch{URL: "s3://scratch/x"}, BundleSHA256: strings.Repeat("a", 64), Tag: "v3"}
	d := &Drilled{Serial: 4, Lineage: "l", SourceVersion: "v", Drift: true, Changes: []string{"create a.b"}, PlanText: []byte("plan"), Artifact: "drill-dev.log"}
	got := DrillDetails("dev", req, d, "drift")
	for k, v := range map[string]any{"env": "dev", "scratch": "s3://scratch/x", "bundle_sha256": req.BundleSHA256, "tag": "v3",
		"serial": int64(4), "lineage": "l", "result": "drift", "plan_artifact": "drill-dev.log", "drift": true} {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("DrillDetails[%s] = %v, want %v", k, got[k], v)
		}
	}
	if got["plan_sha256"] != sha256hex([]byte("plan")) {
		t.Errorf("DrillDetails[plan_sha256] = %v", got["plan_sha256"])
	}
	refused := DrillDetails("dev", req, nil, "refused: a gate failed")
	if _, ok := refused["serial"]; ok {
		t.Errorf("DrillDetails(nil) has a serial: %v", refused)
	}
}

// A drill whose scratch store cannot be made says to run the drill again,
// not the bootstrap whose provisioning step it shares; bootstrap and
// backend create name themselves.
func TestProvisionFailureNamesCommand(t *testing.T) {
	pol, err := policy.Parse(repo.PolicyFile, policy.Template("minio", "dev", ""))
	if err != nil {
		t.Fatal(err)
	}
	pol.Backend.Bucket, pol.Backend.Endpoint = "tfstate", "http://127.0.0.1:1"
	env := pol.Environment("dev")
	r := &repo.Repo{Root: t.TempDir()}
	l := &lock.Lock{Kind: lock.Kind, Version: 1, Env: "dev", Backend: "minio", Bucket: "tfstate", StateKey: "dev/terraform.tfstate",
		Intent: "20261201T100000Z-0a1b2c3d", TemplateSHA256: strings.Repeat("0", 64), Created: "2026-12-01T10:00:00Z"}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(path.Join(env.Dir, repo.BackendLockName), data); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("dial tcp 127.0.0.1:1: connection refused")
	open := func(context.Context, backend.Spec) (backend.Store, error) { return nil, cause }
	run := &Run{cfg: Config{Repo: r}, Policy: pol, EnvName: "dev"}
	_, err = run.Drill(context.Background(), DrillRequest{Scratch: Scratch{URL: "s3://scratch/rehearsal", Bucket: "scratch", Prefix: "rehearsal"}, Open: open})
	if want := cause.Error() + "; nothing is lost: fix the cause and run the same drill again"; err == nil || !errors.Is(err, cause) || err.Error() != want {
		t.Errorf("Drill(scratch store unreachable) = %v, want %q", err, want)
	}
	for command, want := range map[string]string{
		"bootstrap":      "run the same bootstrap again to resume",
		"backend create": "run the same backend create again",
		"drill":          "run the same drill again",
	} {
		run := &Run{cfg: Config{Repo: r}, Policy: pol, EnvName: "dev"}
		_, _, err := run.provision(context.Background(), command, backend.Spec{Bucket: "b"}, nil, open, "subject")
		if err == nil || !strings.HasSuffix(err.Error(), "; nothing is lost: fix the cause and "+want) {
			t.Errorf("provision(%s) = %v, want it to end with %q", command, err, want)
		}
		if ev := run.events; len(ev) != 1 || ev[0].Action != "backend.create" || ev[0].Details["ok"] != false {
			t.Errorf("provision(%s) noted %+v, want one failed backend.create", command, ev)
		}
	}
}
