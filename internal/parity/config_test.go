package parity_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/pinned"
)

// tofu runs the pinned OpenTofu in dir, offline and with no CLI
// configuration, and returns its combined output.
func tofu(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TF_CLI_CONFIG_FILE=/dev/null", "TF_IN_AUTOMATION=1"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.Bytes(), err
}

func lines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestConfigMerge reads the hand-written configurations in
// testdata/config/*.txtar with FromConfig and checks them against the
// policy. Each archive holds the configuration's files and
//
//	-- want --       the findings, "address rule found", one a line
//	-- error --      instead: the error's type, then substrings of its message
//	-- overrides --  optionally: the override files applied, in order
//
// and its comment may say
//
//	tofu: plan                the pinned OpenTofu plans the same
//	                          configuration, and the plan's findings equal
//	                          the configuration's (less the backend, which a
//	                          plan does not show) - OpenTofu merged it as
//	                          FromConfig did
//	tofu: refuses SUMMARY     OpenTofu refuses the configuration with an
//	                          error SUMMARY, as FromConfig does
func TestConfigMerge(t *testing.T) {
	archives, err := filepath.Glob(filepath.Join("testdata", "config", "*.txtar"))
	if err != nil || len(archives) == 0 {
		t.Fatalf("no archives in testdata/config: %v", err)
	}
	for _, file := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Parallel()
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var want, wantErr, wantOverrides []string
			for _, f := range a.Files {
				switch f.Name {
				case "want":
					want = lines(f.Data)
				case "error":
					wantErr = lines(f.Data)
				case "overrides":
					wantOverrides = lines(f.Data)
				default:
					if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			in, err := parity.FromConfig(dir)
			if wantErr != nil {
				if err == nil {
					t.Fatalf("FromConfig = %d resources, backend %s; want an error %s", len(in.Resources), in.Backend, wantErr[0])
				}
				if got := fmt.Sprintf("%T", err); got != wantErr[0] {
					t.Errorf("FromConfig error type = %s, want %s (%v)", got, wantErr[0], err)
				}
				for _, s := range wantErr[1:] {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("FromConfig error = %q, want it to contain %q", err, s)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("FromConfig: %v", err)
				}
				got := check(t, engine(t, policyYAML, nil), in)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("config findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if wantOverrides != nil && !reflect.DeepEqual(in.Overrides, wantOverrides) {
					t.Errorf("Overrides = %q, want %q", in.Overrides, wantOverrides)
				}
			}

			for _, l := range lines(a.Comment) {
				directive, ok := strings.CutPrefix(l, "tofu: ")
				if !ok {
					continue
				}
				if summary, ok := strings.CutPrefix(directive, "refuses "); ok {
					out, err := tofu(t, dir, "init", "-backend=false", "-input=false", "-no-color")
					if err == nil || !bytes.Contains(out, []byte(summary)) {
						t.Errorf("tofu init = %v\n%s\nwant a refusal: %s", err, out, summary)
					}
					continue
				}
				if directive != "plan" {
					t.Fatalf("unknown directive %q", l)
				}
				for _, args := range [][]string{
					{"init", "-input=false", "-no-color"},
					{"plan", "-input=false", "-no-color", "-out=p.tfplan"},
				} {
					if out, err := tofu(t, dir, args...); err != nil {
						t.Fatalf("tofu %s: %v\n%s", args[0], err, out)
					}
				}
				js, err := tofu(t, dir, "show", "-json", "p.tfplan")
				if err != nil {
					t.Fatalf("tofu show: %v\n%s", err, js)
				}
				p, err := parity.ParsePlan(js)
				if err != nil {
					t.Fatal(err)
				}
				got := check(t, engine(t, policyYAML, nil), parity.FromPlan(p))
				var wantPlan []string
				for _, w := range want {
					if !strings.HasPrefix(w, "terraform.backend ") {
						wantPlan = append(wantPlan, w)
					}
				}
				if !reflect.DeepEqual(got, wantPlan) {
					t.Errorf("plan findings of OpenTofu's merge =\n%s\nwant (as FromConfig)\n%s", strings.Join(got, "\n"), strings.Join(wantPlan, "\n"))
				}
			}
		})
	}
}

// ConfigFiles picks the files OpenTofu reads: .tofu over .tf of the same
// name, override files by stem, no hidden, editor or other files, no
// directories.
func TestConfigFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"main.tf", "main.tofu", "b.tf.json", "b.tofu.json", "c.tf.json", "d.tf", "e.tofu",
		"override.tf", "x_override.tf.json", "y_override.tofu", "z_override.tf", "z_override.tofu",
		"overrides.tf", ".hidden.tf", "x.tf~", "#x.tf#", "notes.txt", "main.tf.bak", "t.tftest.hcl",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.tf"), 0o755); err != nil {
		t.Fatal(err)
	}
	primary, override, err := parity.ConfigFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantPrimary := []string{"b.tofu.json", "c.tf.json", "d.tf", "e.tofu", "main.tofu", "overrides.tf"}
	wantOverride := []string{"override.tf", "x_override.tf.json", "y_override.tofu", "z_override.tofu"}
	if !reflect.DeepEqual(primary, wantPrimary) || !reflect.DeepEqual(override, wantOverride) {
		t.Errorf("ConfigFiles = %q, %q, want %q, %q", primary, override, wantPrimary, wantOverride)
	}
}

// A configuration file over 8 MiB is refused before it is parsed.
func TestConfigFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("# padding padding padding padding padding padding padding padding\n"), (8<<20)/64+1)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := parity.FromConfig(dir)
	var tl *parity.TooLargeError
	if !errors.As(err, &tl) || tl.File != "main.tf" || !strings.HasPrefix(err.Error(), "main.tf: ") {
		t.Fatalf("FromConfig(9 MiB main.tf) = %v, want a *TooLargeError naming main.tf", err)
	}
}

// FromConfig never panics on a native file and a JSON override file: it
// returns an error, or an input with a backend and well-formed addresses.
func FuzzFromConfig(f *testing.F) {
	archives, _ := filepath.Glob(filepath.Join("testdata", "config", "*.txtar"))
	for _, file := range archives {
		a, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var native, js []byte
		for _, af := range a.Files {
			switch {
			case native == nil && strings.HasSuffix(af.Name, ".tf"):
				native = af.Data
			case js == nil && strings.HasSuffix(af.Name, ".json"):
				js = af.Data
			}
		}
		f.Add(native, js)
	}
	f.Fuzz(func(t *testing.T, native, js []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), native, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "override.tf.json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := parity.FromConfig(dir)
		if err != nil {
			return
		}
		if in.Backend == "" && in.BackendFile != "" {
			t.Errorf("FromConfig = backend \"\" declared at %s:%d, want its type", in.BackendFile, in.BackendLine)
		}
		for _, r := range in.Resources {
			if r.Type == "" || !strings.HasPrefix(r.Address, r.Type+".") {
				t.Errorf("resource address %q of type %q is malformed", r.Address, r.Type)
			}
		}
	})
}
