package tfrun_test

import (
	"reflect"
	"testing"

	"github.com/groundzero/groundzero/internal/tfrun"
)

func TestArgs(t *testing.T) {
	for _, c := range []struct {
		got, want []string
	}{
		{tfrun.InitArgs(), []string{"init", "-input=false", "-no-color"}},
		{tfrun.PlanArgs("/p/x.tfplan", false), []string{"plan", "-input=false", "-no-color", "-out=/p/x.tfplan"}},
		{tfrun.PlanArgs("x", true), []string{"plan", "-input=false", "-no-color", "-out=x", "-destroy"}},
		{tfrun.ShowJSONArgs("x"), []string{"show", "-json", "-no-color", "x"}},
		{tfrun.ShowJSONArgs(""), []string{"show", "-json", "-no-color"}},
		{tfrun.ApplyArgs("x"), []string{"apply", "-input=false", "-no-color", "x"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("args = %q, want %q", c.got, c.want)
		}
	}
}

// The TF_* environment is owned: ambient settings are dropped, except the
// CLI configuration and plugin cache an operator sets on purpose.
func TestEnv(t *testing.T) {
	got := tfrun.Env([]string{"PATH=/bin", "TF_LOG=TRACE", "TF_VAR_region=us-east-1", "TF_CLI_CONFIG_FILE=/etc/tofurc",
		"TF_PLUGIN_CACHE_DIR=/cache", "TF_WORKSPACE=other", "AWS_REGION=eu-west-1", "TF_CLI_ARGS_apply=-auto-approve"})
	want := []string{"PATH=/bin", "TF_CLI_CONFIG_FILE=/etc/tofurc", "TF_PLUGIN_CACHE_DIR=/cache", "AWS_REGION=eu-west-1",
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Env = %q, want %q", got, want)
	}
}
