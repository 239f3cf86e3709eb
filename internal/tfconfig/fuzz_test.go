package tfconfig_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/tfconfig"
)

// FuzzModules feeds Modules a root file and a module file (each written as
// HCL or JSON) in a fixed layout. Modules must not panic, must be
// deterministic, and every call it returns must be complete and come from a
// file in the layout; CheckModules must not panic on what it returns. The
// budget is a count (scripts/fuzz runs -fuzztime=Nx).
func FuzzModules(f *testing.F) {
	f.Add(mod("m", "./modules/m"), resource, false, false)
	f.Add(mod("m", "./modules/m")+modv("s3", "a/b/c", "1.2.3"), mod("n", "../n"), false, false)
	f.Add(`{"module": {"m": {"source": "./modules/m", "version": "= 1.0.0"}}}`, `{"module": [{"x": {"source": "git::https://e/x"}}]}`, true, true)
	f.Add(mod("m", "./modules/m"), mod("back", "../.."), false, false)
	f.Add("module \"m\" {\n  source = var.x\n}\n", "", false, false)
	f.Add("module \"m\" {\n  source = \"./${\"modules\"}/m\"\n}\n", "}", false, false)
	f.Add(`{"module": {"m": {"source": ["./modules/m"]}}}`, `{"module": null}`, true, true)
	f.Fuzz(func(t *testing.T, rootSrc, modSrc string, rootJSON, modJSON bool) {
		if len(rootSrc)+len(modSrc) > 1<<16 {
			return
		}
		root := t.TempDir()
		boot := filepath.Join(root, "infra", "bootstrap")
		mdir := filepath.Join(boot, "modules", "m")
		if err := os.MkdirAll(mdir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := func(j bool) string {
			if j {
				return "main.tf.json"
			}
			return "main.tf"
		}
		if err := os.WriteFile(filepath.Join(boot, name(rootJSON)), []byte(rootSrc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mdir, name(modJSON)), []byte(modSrc), 0o644); err != nil {
			t.Fatal(err)
		}
		calls, err := tfconfig.Modules(boot)
		again, err2 := tfconfig.Modules(boot)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(calls, again) {
			t.Fatalf("Modules is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, c := range calls {
			if c.Name == "" || c.Source == "" || !strings.HasPrefix(c.Range.Filename, boot) || c.Range.Start.Line < 1 {
				t.Fatalf("incomplete call %+v", c)
			}
			if c.Local() != (c.Dir != "") {
				t.Fatalf("call %+v: Dir set for a non-local source, or missing for a local one", c)
			}
		}
		for _, p := range tfconfig.CheckModules(root, manifest.IsGoverned, calls, registry) {
			if p.File == "" || p.Line < 1 || p.Reason == "" || p.Fix == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
	})
}
