package pinned_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/pinned"
)

// The installer built the pinned versions, and they run.
func TestInstalledVersions(t *testing.T) {
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tofu, "version")
	cmd.Env = []string{"TF_CLI_CONFIG_FILE=/dev/null", "HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tofu version: %v\n%s", err, out)
	}
	if want := "OpenTofu " + pinned.TofuVersion + "\n"; !strings.HasPrefix(string(out), want) {
		t.Fatalf("tofu version = %q, want prefix %q", out, want)
	}

	gw, err := pinned.Path("versitygw")
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(gw, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("versitygw --version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), pinned.VersitygwVersion) {
		t.Fatalf("versitygw --version = %q", out)
	}
}
