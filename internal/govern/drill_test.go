package govern

import (
	"reflect"
	"strings"
	"testing"
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
