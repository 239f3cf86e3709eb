package tfconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/tfconfig"
)

// repoWith lays files out in a fresh repository (paths relative to its root)
// and returns the root.
func repoWith(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, root, files)
	return root
}

func write(t *testing.T, dir string, files map[string]string) {
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

const resource = "resource \"terraform_data\" \"x\" {\n  input = \"x\"\n}\n"

func mod(name, source string) string {
	return "module \"" + name + "\" {\n  source = \"" + source + "\"\n}\n"
}

func modv(name, source, version string) string {
	return "module \"" + name + "\" {\n  source  = \"" + source + "\"\n  version = \"" + version + "\"\n}\n"
}

var registry = []tfconfig.RemoteModule{
	{Source: "registry.opentofu.org/terraform-aws-modules/s3-bucket/aws", Version: "4.1.2"},
	{Source: "git::https://example.com/vpc.git?ref=0123456789abcdef0123456789abcdef01234567"},
}

// check runs Modules on infra/bootstrap and CheckModules with the real
// manifest coverage rule.
func check(t *testing.T, root string) ([]tfconfig.ModuleCall, []tfconfig.Problem) {
	t.Helper()
	calls, err := tfconfig.Modules(filepath.Join(root, "infra", "bootstrap"))
	if err != nil {
		t.Fatalf("Modules: %v", err)
	}
	return calls, tfconfig.CheckModules(root, manifest.IsGoverned, calls, registry)
}

// wantProblem asserts exactly one problem, at file:line, naming source and
// containing reason and the fix.
func wantProblem(t *testing.T, problems []tfconfig.Problem, file string, line int, source, reason, fix string) {
	t.Helper()
	if len(problems) != 1 {
		t.Fatalf("CheckModules = %v, want one problem at %s:%d", problems, file, line)
	}
	p := problems[0]
	s := p.String()
	if p.File != file || p.Line != line || p.Source != source || !strings.Contains(p.Reason, reason) || !strings.Contains(p.Fix, fix) ||
		!strings.HasPrefix(s, file+":") || !strings.Contains(s, source) {
		t.Fatalf("CheckModules = %s\nwant %s:%d, source %q, reason containing %q, fix containing %q", s, file, line, source, reason, fix)
	}
}

func TestLocalInsideGovernedTree(t *testing.T) {
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf":           resource + mod("m", "./modules/m"),
		"infra/bootstrap/modules/m/main.tf": resource,
		"infra/bootstrap/modules/m/tpl/x":   "template",
	})
	calls, problems := check(t, root)
	want := filepath.Join(root, "infra", "bootstrap", "modules", "m")
	if len(calls) != 1 || calls[0].Name != "m" || calls[0].Dir != want || calls[0].Range.Start.Line != 4 {
		t.Fatalf("Modules = %+v, want one call m at line 4 into %s", calls, want)
	}
	if problems != nil {
		t.Fatalf("CheckModules = %v, want none", problems)
	}
}

func TestLocalOutsideGovernedTree(t *testing.T) {
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf": resource + "\n" + mod("m", "../modules/m"),
		"infra/modules/m/main.tf": resource,
	})
	_, problems := check(t, root)
	wantProblem(t, problems, "infra/bootstrap/main.tf", 5, "../modules/m", "outside the governed tree", "manifest update")
}

// A module directory that is a symbolic link out of the repository.
func TestLocalSymlinkEscapes(t *testing.T) {
	root := repoWith(t, map[string]string{"infra/bootstrap/main.tf": mod("m", "./modules/m")})
	outside := t.TempDir()
	write(t, outside, map[string]string{"main.tf": resource})
	if err := os.MkdirAll(filepath.Join(root, "infra", "bootstrap", "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "infra", "bootstrap", "modules", "m")); err != nil {
		t.Fatal(err)
	}
	_, problems := check(t, root)
	wantProblem(t, problems, "infra/bootstrap/main.tf", 1, "./modules/m", "outside the repository", "infra/bootstrap/")
}

// Inside the governed tree, a module directory may not hold a symbolic link
// or OpenTofu's own working files.
func TestLocalUngovernedFiles(t *testing.T) {
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf":                             mod("m", "./modules/m"),
		"infra/bootstrap/modules/m/main.tf":                   resource,
		"infra/bootstrap/modules/m/.terraform/modules/x/a.tf": resource,
	})
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "infra", "bootstrap", "modules", "m", "data.txt")); err != nil {
		t.Fatal(err)
	}
	_, problems := check(t, root)
	if len(problems) != 2 || !strings.Contains(problems[0].Reason+problems[1].Reason, "symbolic link") ||
		!strings.Contains(problems[0].Reason+problems[1].Reason, ".terraform/modules/x/a.tf, which the manifest does not govern") {
		t.Fatalf("CheckModules = %v, want the symbolic link and the .terraform file", problems)
	}
}

// Calls are followed through local modules, transitively; a directory
// called twice is read once.
func TestNested(t *testing.T) {
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf":           mod("a", "./modules/a") + mod("a2", "./modules/a"),
		"infra/bootstrap/modules/a/main.tf": mod("b", "../b"),
		"infra/bootstrap/modules/b/main.tf": resource + mod("c", "../../../modules/c"),
		"infra/modules/c/main.tf":           resource,
	})
	calls, problems := check(t, root)
	var names []string
	for _, c := range calls {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,a2,b,c" {
		t.Fatalf("Modules calls = %v, want a,a2,b,c", names)
	}
	wantProblem(t, problems, "infra/bootstrap/modules/b/main.tf", 4, "../../../modules/c", "outside the governed tree", "manifest update")
}

func TestCycle(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"two": {
			"infra/bootstrap/main.tf":           mod("a", "./modules/a"),
			"infra/bootstrap/modules/a/main.tf": mod("b", "../b"),
			"infra/bootstrap/modules/b/main.tf": mod("a", "../a"),
		},
		"self": {
			"infra/bootstrap/main.tf":           mod("a", "./modules/a"),
			"infra/bootstrap/modules/a/main.tf": mod("me", "./"),
		},
		"root": {
			"infra/bootstrap/main.tf":           mod("a", "./modules/a"),
			"infra/bootstrap/modules/a/main.tf": mod("up", "../.."),
		},
	} {
		root := repoWith(t, files)
		_, err := tfconfig.Modules(filepath.Join(root, "infra", "bootstrap"))
		var ce *tfconfig.CycleError
		if !errors.As(err, &ce) || len(ce.Chain) == 0 || !strings.Contains(err.Error(), "main.tf:1") {
			t.Errorf("%s: Modules = %v, want *CycleError naming the calls", name, err)
		}
	}
}

func TestRemote(t *testing.T) {
	const s3 = "terraform-aws-modules/s3-bucket/aws"
	const git = "git::https://example.com/vpc.git?ref=0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		name, config string
		reason       string // "" when allowed
		line         int
	}{
		{"registry exact", modv("s3", s3, "4.1.2"), "", 0},
		{"registry exact with operator", modv("s3", "registry.opentofu.org/"+s3, "= 4.1.2"), "", 0},
		{"registry case", modv("s3", "Registry.OpenTofu.org/Terraform-AWS-Modules/S3-Bucket/aws", "4.1.2"), "", 0},
		{"registry range", modv("s3", s3, "~> 4.1"), "constraint", 3},
		{"registry lower bound", modv("s3", s3, ">= 4.1.2"), "constraint", 3},
		{"registry two versions", modv("s3", s3, "4.1.2, 4.1.3"), "constraint", 3},
		{"registry other version", modv("s3", s3, "4.1.3"), `allows only "4.1.2"`, 3},
		{"registry no version", mod("s3", s3), "no version", 1},
		{"registry other host", modv("s3", "registry.terraform.io/"+s3, "4.1.2"), "not listed", 1},
		{"registry unlisted", modv("vpc", "terraform-aws-modules/vpc/aws", "5.0.0"), "not listed", 1},
		{"git listed", mod("vpc", git), "", 0},
		{"git unlisted", mod("vpc", "git::https://example.com/vpc.git?ref=main"), "not listed", 1},
		{"github shorthand", mod("vpc", "github.com/example/vpc"), "not listed", 1},
		{"absolute path", mod("vpc", "/opt/modules/vpc"), "not listed", 1},
		{"http archive", mod("vpc", "https://example.com/vpc.zip"), "not listed", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := repoWith(t, map[string]string{"infra/bootstrap/main.tf": c.config})
			calls, problems := check(t, root)
			if len(calls) != 1 || calls[0].Dir != "" {
				t.Fatalf("Modules = %+v, want one remote call", calls)
			}
			if c.reason == "" {
				if problems != nil {
					t.Fatalf("CheckModules = %v, want none", problems)
				}
				return
			}
			wantProblem(t, problems, "infra/bootstrap/main.tf", c.line, calls[0].Source, c.reason, "modules.remote")
		})
	}
}

// Module calls in *.tf.json files and in override files (which replace the
// source or version of the block of the same name) are found.
func TestJSONAndOverrides(t *testing.T) {
	const s3 = "terraform-aws-modules/s3-bucket/aws"
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf":             mod("m", "./modules/m") + modv("s3", s3, "4.1.2"),
		"infra/bootstrap/modules/m/main.tf":   resource,
		"infra/bootstrap/extra.tf.json":       `{"module": {"j": {"source": "../modules/j"}}}`,
		"infra/modules/j/main.tf":             resource,
		"infra/bootstrap/override.tf":         "\n\nmodule \"m\" {\n  source = \"../modules/o\"\n}\n",
		"infra/modules/o/main.tf":             resource,
		"infra/bootstrap/s3_override.tf.json": `{"module": {"s3": {"version": ">= 4"}}}`,
	})
	calls, problems := check(t, root)
	got := map[string]tfconfig.ModuleCall{}
	for _, c := range calls {
		got[c.Name] = c
	}
	if got["m"].Source != "../modules/o" || got["j"].Source != "../modules/j" || got["s3"].Version != ">= 4" {
		t.Fatalf("Modules = %+v, want the override's source for m, j from JSON, the override's version for s3", calls)
	}
	want := map[string]string{
		"infra/bootstrap/extra.tf.json:1":       "outside the governed tree",
		"infra/bootstrap/override.tf:3":         "outside the governed tree",
		"infra/bootstrap/s3_override.tf.json:1": "constraint",
	}
	if len(problems) != len(want) {
		t.Fatalf("CheckModules = %v, want %d problems", problems, len(want))
	}
	for _, p := range problems {
		key := p.File + ":" + strconv.Itoa(p.Line)
		if r, ok := want[key]; !ok || !strings.Contains(p.Reason, r) {
			t.Errorf("problem %s, want one of %v", p, want)
		}
	}
}

// OpenTofu reads x.tofu instead of x.tf; Terraform reads only x.tf. Both
// views are checked.
func TestTofuFiles(t *testing.T) {
	root := repoWith(t, map[string]string{
		"infra/bootstrap/main.tf":           mod("m", "./modules/m"),
		"infra/bootstrap/main.tofu":         mod("m", "../modules/m"),
		"infra/bootstrap/only.tofu":         mod("t", "../modules/t"),
		"infra/bootstrap/modules/m/main.tf": resource,
		"infra/modules/m/main.tf":           resource,
		"infra/modules/t/main.tf":           resource,
		// Ignored by OpenTofu: hidden, editor and test files, and directories.
		"infra/bootstrap/.hidden.tf":                 mod("h", "../evil"),
		"infra/bootstrap/main.tf~":                   mod("h", "../evil"),
		"infra/bootstrap/#main.tf#":                  mod("h", "../evil"),
		"infra/bootstrap/x.tftest.hcl":               mod("h", "../evil"),
		"infra/bootstrap/.terraform/modules/evil.tf": mod("h", "../evil"),
	})
	calls, problems := check(t, root)
	var srcs []string
	for _, c := range calls {
		srcs = append(srcs, c.Name+"="+c.Source)
	}
	if strings.Join(srcs, " ") != "m=./modules/m m=../modules/m t=../modules/t" {
		t.Fatalf("Modules = %v, want both views of m, and t", srcs)
	}
	if len(problems) != 2 || problems[0].File != "infra/bootstrap/main.tofu" || problems[1].File != "infra/bootstrap/only.tofu" {
		t.Fatalf("CheckModules = %v, want main.tofu and only.tofu", problems)
	}
}

func TestModulesRefuses(t *testing.T) {
	deep := map[string]string{"infra/bootstrap/main.tf": mod("d", "./d")}
	p := "infra/bootstrap"
	for i := 0; i <= tfconfig.MaxDepth; i++ {
		p += "/d"
		deep[p+"/main.tf"] = mod("d", "./d")
	}
	deep[p+"/d/main.tf"] = resource
	for _, c := range []struct {
		name  string
		files map[string]string
		want  any
		text  string
	}{
		{"variable source", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n  source = var.where\n}\n"}, new(*tfconfig.NotLiteralError), "main.tf:2"},
		{"template source", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n  source = \"./${local.x}\"\n}\n"}, new(*tfconfig.NotLiteralError), "source is not a literal"},
		{"function source", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n  source = lower(\"./M\")\n}\n"}, new(*tfconfig.NotLiteralError), "main.tf:2"},
		{"variable version", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n  source = \"a/b/c\"\n  version = var.v\n}\n"}, new(*tfconfig.NotLiteralError), "version is not a literal"},
		{"JSON template source", map[string]string{"infra/bootstrap/main.tf.json": `{"module": {"m": {"source": "${var.x}"}}}`}, new(*tfconfig.NotLiteralError), "main.tf.json:1"},
		{"number source", map[string]string{"infra/bootstrap/main.tf.json": `{"module": {"m": {"source": 5}}}`}, new(*tfconfig.NotLiteralError), "main.tf.json:1"},
		{"no source", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n}\n"}, new(*tfconfig.MissingSourceError), "main.tf:1"},
		{"duplicate", map[string]string{"infra/bootstrap/a.tf": mod("m", "a/b/c"), "infra/bootstrap/b.tf": mod("m", "a/b/c")}, new(*tfconfig.DuplicateModuleError), "b.tf:1"},
		{"missing directory", map[string]string{"infra/bootstrap/main.tf": mod("m", "./nowhere")}, new(*tfconfig.ModuleDirError), "main.tf:1"},
		{"syntax", map[string]string{"infra/bootstrap/main.tf": "module \"m\" {\n"}, new(*tfconfig.SyntaxError), "main.tf"},
		{"syntax in module", map[string]string{"infra/bootstrap/main.tf": mod("m", "./m"), "infra/bootstrap/m/x.tf": "}"}, new(*tfconfig.SyntaxError), "x.tf"},
		{"too large", map[string]string{"infra/bootstrap/main.tf": strings.Repeat("#", tfconfig.MaxFileSize+1)}, new(*tfconfig.LimitError), "main.tf"},
		{"too deep", deep, new(*tfconfig.LimitError), "nested module calls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := repoWith(t, c.files)
			calls, err := tfconfig.Modules(filepath.Join(root, "infra", "bootstrap"))
			if err == nil || !errors.As(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Modules = %+v, %v; want %T containing %q", calls, err, c.want, c.text)
			}
		})
	}
}
