package tfrun_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/tfrun"
)

// Tests against the real pinned OpenTofu. The configurations use only
// terraform_data, which is built in: no provider download, no network.

func pinnedTofu(t *testing.T) string {
	t.Helper()
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	return tofu
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newDataDir(t *testing.T) string {
	t.Helper()
	dd, cleanup, err := tfrun.NewDataDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return dd
}

// baseEnviron is a clean environment for the engine: the tests do not depend
// on the ambient TF_* variables.
func baseEnviron(t *testing.T) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
}

// plannedInput inits and plans dir with r and returns the input of
// module.m.terraform_data.x in the saved plan.
func plannedInput(t *testing.T, r *tfrun.Runner) string {
	t.Helper()
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "p.tfplan")
	for _, args := range [][]string{tfrun.InitArgs(false), tfrun.PlanArgs(out, false)} {
		if _, err := r.Run(ctx, nil, args...); err != nil {
			t.Fatal(err)
		}
	}
	js, err := r.Run(ctx, nil, tfrun.ShowJSONArgs(out)...)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				After struct {
					Input string `json:"input"`
				} `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(js, &plan); err != nil {
		t.Fatal(err)
	}
	for _, rc := range plan.ResourceChanges {
		if rc.Address == "module.m.terraform_data.x" {
			return rc.Change.After.Input
		}
	}
	t.Fatalf("plan has no module.m.terraform_data.x: %s", js)
	return ""
}

// A committed .terraform/modules/modules.json that points the module call at
// another directory decides nothing: with the private data directory, init
// and plan use the governed module.
func TestCommittedModulesJSONIgnored(t *testing.T) {
	tofu := pinnedTofu(t)
	base := t.TempDir()
	cfg := filepath.Join(base, "cfg")
	evil := filepath.Join(base, "evil")
	module := func(input string) string {
		return "resource \"terraform_data\" \"x\" {\n  input = \"" + input + "\"\n}\n"
	}
	writeFiles(t, cfg, map[string]string{
		"main.tf":           "module \"m\" {\n  source = \"./modules/m\"\n}\n",
		"modules/m/main.tf": module("governed"),
		".terraform/modules/modules.json": `{"Modules":[{"Key":"","Source":"","Dir":"."},` +
			`{"Key":"m","Source":"./modules/m","Dir":` + jsonString(evil) + `}]}`,
	})
	writeFiles(t, evil, map[string]string{"main.tf": module("redirected")})

	// The hole: OpenTofu run in the configuration's own data directory
	// follows the committed manifest.
	t.Run("control", func(t *testing.T) {
		env := tfrun.Env(baseEnviron(t), newDataDir(t))
		for i, kv := range env {
			if strings.HasPrefix(kv, "TF_DATA_DIR=") {
				env[i] = "TF_DATA_DIR=" + filepath.Join(cfg, ".terraform")
			}
		}
		for _, args := range [][]string{tfrun.InitArgs(false), {"plan", "-input=false", "-no-color"}} {
			cmd := exec.Command(tofu, args...)
			cmd.Dir, cmd.Env = cfg, env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tofu %s: %v\n%s", args[0], err, out)
			}
			if args[0] == "plan" && !strings.Contains(string(out), `"redirected"`) {
				t.Fatalf("control plan does not use the redirected module, so the test proves nothing:\n%s", out)
			}
		}
	})

	r := &tfrun.Runner{Bin: tofu, Dir: cfg, DataDir: newDataDir(t), Environ: baseEnviron(t)}
	if got := plannedInput(t, r); got != "governed" {
		t.Fatalf("planned module.m.terraform_data.x input = %q, want %q", got, "governed")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A CLI configuration with provider dev_overrides, named by TERRAFORM_CONFIG,
// by TF_CLI_CONFIG_FILE or found in HOME, has no effect: OpenTofu warns when
// dev overrides are active, and the warning is absent.
func TestAmbientCLIConfigIgnored(t *testing.T) {
	tofu := pinnedTofu(t)
	const warning = "Provider development overrides are in effect"
	rc := "provider_installation {\n  dev_overrides {\n    \"example.com/evil/null\" = \"/tmp/evil-provider\"\n  }\n  direct {}\n}\n"
	for _, c := range []struct {
		name string
		env  func(t *testing.T, rcFile, home string) []string
	}{
		{"TERRAFORM_CONFIG", func(t *testing.T, rcFile, home string) []string {
			return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "TERRAFORM_CONFIG=" + rcFile}
		}},
		{"TF_CLI_CONFIG_FILE", func(t *testing.T, rcFile, home string) []string {
			return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "TF_CLI_CONFIG_FILE=" + rcFile}
		}},
		{"HOME/.tofurc", func(t *testing.T, rcFile, home string) []string {
			writeFiles(t, home, map[string]string{".tofurc": rc})
			return []string{"PATH=/usr/bin:/bin", "HOME=" + home}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			rcFile := filepath.Join(base, "evil.tofurc")
			writeFiles(t, base, map[string]string{
				"evil.tofurc": rc,
				"cfg/main.tf": "resource \"terraform_data\" \"x\" {\n  input = \"a\"\n}\n",
			})
			home := filepath.Join(base, "home")
			if err := os.Mkdir(home, 0o755); err != nil {
				t.Fatal(err)
			}
			environ := c.env(t, rcFile, home)
			cfg := filepath.Join(base, "cfg")

			// Control: run as it was given, the configuration takes effect.
			cmd := exec.Command(tofu, "plan", "-input=false", "-no-color")
			cmd.Dir, cmd.Env = cfg, append(environ, "TF_DATA_DIR="+filepath.Join(base, "control"))
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), warning) {
				t.Fatalf("control: dev_overrides did not take effect, so the test proves nothing:\n%s", out)
			}

			r := &tfrun.Runner{Bin: tofu, Dir: cfg, DataDir: newDataDir(t), Environ: environ}
			var all strings.Builder
			for _, args := range [][]string{tfrun.InitArgs(false), tfrun.PlanArgs(filepath.Join(base, "p.tfplan"), false)} {
				if _, err := r.Run(context.Background(), &all, args...); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Contains(all.String(), warning) || strings.Contains(all.String(), "Warning") {
				t.Fatalf("dev_overrides from %s took effect:\n%s", c.name, all.String())
			}
		})
	}
}

// A provider planted in HOME's implied plugin directory
// (~/.terraform.d/plugins), which OpenTofu uses when no CLI configuration
// says how to install providers, is not installed: groundzero's CLI
// configuration installs directly from registries only. The provider's host
// is under .invalid, so the direct lookup fails at once, without network.
func TestImpliedPluginDirIgnored(t *testing.T) {
	tofu := pinnedTofu(t)
	base := t.TempDir()
	home := filepath.Join(base, "home")
	platform := runtime.GOOS + "_" + runtime.GOARCH
	planted := filepath.Join(home, ".terraform.d", "plugins", "example.invalid", "evil", "null", "1.0.0", platform, "terraform-provider-null")
	writeFiles(t, base, map[string]string{
		"cfg/main.tf": "terraform {\n  required_providers {\n    null = {\n      source  = \"example.invalid/evil/null\"\n      version = \"1.0.0\"\n    }\n  }\n}\n",
	})
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "cfg")
	environ := []string{"PATH=/usr/bin:/bin", "HOME=" + home}

	// Control: with an empty CLI configuration the planted provider installs.
	cmd := exec.Command(tofu, tfrun.InitArgs(false)...)
	cmd.Dir, cmd.Env = cfg, append(environ, "TF_CLI_CONFIG_FILE=/dev/null", "TF_DATA_DIR="+filepath.Join(base, "control"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Installed example.invalid/evil/null v1.0.0") {
		t.Fatalf("control: the planted provider was not installed (%v), so the test proves nothing:\n%s", err, out)
	}

	r := &tfrun.Runner{Bin: tofu, Dir: cfg, DataDir: newDataDir(t), Environ: environ}
	out, err := r.Run(context.Background(), nil, tfrun.InitArgs(false)...)
	var te *tfrun.Error
	if !errors.As(err, &te) || strings.Contains(te.Output, "Installed example.invalid") {
		t.Fatalf("init = %q, %v; want a failure to reach example.invalid, not the planted provider", out, err)
	}
	if !strings.Contains(te.Output, "example.invalid") {
		t.Fatalf("init failed for another reason:\n%s", te.Output)
	}
}

// -lockfile=readonly is accepted by the pinned engine.
func TestInitLockfileReadonly(t *testing.T) {
	cfg := t.TempDir()
	writeFiles(t, cfg, map[string]string{
		"main.tf":             "resource \"terraform_data\" \"x\" {\n  input = 1\n}\n",
		".terraform.lock.hcl": "# This file is maintained automatically by \"tofu init\".\n",
	})
	r := &tfrun.Runner{Bin: pinnedTofu(t), Dir: cfg, DataDir: newDataDir(t), Environ: baseEnviron(t)}
	if _, err := r.Run(context.Background(), nil, tfrun.InitArgs(true)...); err != nil {
		t.Fatal(err)
	}
}
