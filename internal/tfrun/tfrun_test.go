package tfrun_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/tfrun"
)

func TestArgs(t *testing.T) {
	for _, c := range []struct {
		got, want []string
	}{
		{tfrun.InitArgs(false), []string{"init", "-input=false", "-no-color"}},
		{tfrun.InitArgs(true), []string{"init", "-input=false", "-no-color", "-lockfile=readonly"}},
		{tfrun.PlanArgs("/p/x.tfplan", false), []string{"plan", "-input=false", "-no-color", "-out=/p/x.tfplan"}},
		{tfrun.PlanArgs("x", true), []string{"plan", "-input=false", "-no-color", "-out=x", "-destroy"}},
		{tfrun.ShowJSONArgs("x"), []string{"show", "-json", "-no-color", "x"}},
		{tfrun.ShowJSONArgs(""), []string{"show", "-json", "-no-color"}},
		{tfrun.ApplyArgs("x"), []string{"apply", "-input=false", "-no-color", "x"}},
		{tfrun.VersionArgs(), []string{"version", "-json"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("args = %q, want %q", c.got, c.want)
		}
	}
}

// The environment is owned: every ambient OpenTofu setting is dropped with
// its value, whatever it names, and groundzero's own are set.
func TestEnv(t *testing.T) {
	got := tfrun.Env([]string{"PATH=/bin", "TF_LOG=TRACE", "TF_VAR_x=1", "TERRAFORM_CONFIG=/evil/rc", "TF_CLI_CONFIG_FILE=/etc/tofurc",
		"TF_DATA_DIR=/repo/.terraform", "TF_REATTACH_PROVIDERS={}", "TF_PLUGIN_CACHE_DIR=/cache", "TF_WORKSPACE=other",
		"AWS_REGION=eu-west-1", "TF_CLI_ARGS_apply=-auto-approve", "tf_var_y=2", "GODEBUG=x509sha1=1",
		"TF_IN_AUTOMATION=", "CHECKPOINT_DISABLE=0", "HOME=/home/op"}, "/tmp/dd")
	want := []string{"PATH=/bin", "AWS_REGION=eu-west-1", "HOME=/home/op",
		"TF_CLI_CONFIG_FILE=/tmp/dd/groundzero.tofurc", "TF_DATA_DIR=/tmp/dd", "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Env = %q\nwant  %q", got, want)
	}
}

// Every line of EnvTable does what it says: a removed name (or a name under
// a removed prefix) does not survive, and a set name appears exactly once
// with groundzero's value.
func TestEnvTable(t *testing.T) {
	const dd = "/private/dd"
	for _, r := range tfrun.EnvTable {
		name := strings.TrimSuffix(r.Name, "*")
		if strings.HasSuffix(r.Name, "*") {
			name += "SAMPLE"
		}
		if r.Reason == "" {
			t.Errorf("EnvTable %s has no reason", r.Name)
		}
		env := tfrun.Env([]string{name + "=ambient", strings.ToLower(name) + "=ambient"}, dd)
		var vals []string
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if strings.EqualFold(k, name) {
				vals = append(vals, v)
			}
		}
		want := []string(nil)
		if r.Value != "" {
			want = []string{strings.ReplaceAll(r.Value, tfrun.DataDirToken, dd)}
		}
		if !slices.Equal(vals, want) {
			t.Errorf("Env(%s=ambient) leaves %s = %q, want %q", name, name, vals, want)
		}
	}
}
