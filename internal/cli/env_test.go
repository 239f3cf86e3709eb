package cli

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// libraryEnv are variables the README documents that the libraries read, not
// groundzero's own code (the AWS and Google SDKs, Go's TLS and proxy
// support, OpenTofu through the engine's environment).
var libraryEnv = []string{
	"AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_IAM",
	"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"GNUPGHOME", "TF_*", "TERRAFORM_CONFIG", "GODEBUG",
	"GITHUB_WORKFLOW_REF", "CI_CONFIG_PATH",
}

func TestEnvVarsListed(t *testing.T) {
	root := filepath.Join("..", "..")
	read := envReads(t, root)

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented, ok := readmeEnv(string(readme))
	if !ok {
		t.Fatal("README.md has no environment variable table between <!-- env:start --> and <!-- env:end -->")
	}
	const where = "README.md between <!-- env:start --> and <!-- env:end -->"
	var missing []string
	for name, pos := range read {
		if !slices.Contains(documented, name) {
			missing = append(missing, name+" (read at "+strings.Join(pos, ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("environment variable %s is not in %s", m, where)
	}
	for _, name := range documented {
		if _, ok := read[name]; !ok && !slices.Contains(libraryEnv, name) {
			t.Errorf("%s lists %s, which no source reads any more (nor is it in libraryEnv)", where, name)
		}
	}
}

// The scanner sees each way the sources name a variable, and refuses what
// it cannot resolve.
func TestEnvReadsScanner(t *testing.T) {
	dir := t.TempDir()
	src := map[string]string{
		"go.mod": "module example.test/m\n",
		"a/a.go": `package a
import "os"
const Name = "A_CONST"
var names = []string{"A_RANGE1", "A_RANGE2"}
func f(getenv func(string) string) {
	os.Getenv("A_LITERAL")
	getenv(Name)
	for _, k := range names { getenv(k) }
	os.LookupEnv("A_LOOKUP")
}
`,
		"b/b.go": `package b
import x "example.test/m/a"
type app struct{ getenv func(string) string }
func (p *app) g() { p.getenv(x.Name) }
`,
		"a/a_test.go": `package a
import "os"
func g() { os.Getenv("A_TEST_ONLY") }
`,
	}
	for p, s := range src {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := envReads(t, dir)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"A_CONST", "A_LITERAL", "A_LOOKUP", "A_RANGE1", "A_RANGE2"}
	if !slices.Equal(names, want) {
		t.Errorf("envReads = %q, want %q", names, want)
	}

	if err := os.WriteFile(filepath.Join(dir, "a", "c.go"), []byte("package a\nimport \"os\"\nfunc h(n string) { os.Getenv(n) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ft := &fakeT{}
	envReads(ft, dir)
	if !strings.Contains(ft.msg, "c.go:3") {
		t.Errorf("envReads(a variable name) reported %q, want an error naming c.go:3", ft.msg)
	}
}

// fakeT collects what envReads reports.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper()                   {}
func (f *fakeT) Errorf(s string, a ...any) { f.msg += fmt.Sprintf(s, a...) + "\n" }
func (f *fakeT) Fatal(a ...any)            { panic(fmt.Sprint(a...)) }

// readmeEnv returns the variable names in the first column of the table
// between the env markers.
func readmeEnv(readme string) ([]string, bool) {
	_, rest, ok := strings.Cut(readme, "<!-- env:start -->")
	if !ok {
		return nil, false
	}
	section, _, ok := strings.Cut(rest, "<!-- env:end -->")
	if !ok {
		return nil, false
	}
	var names []string
	first := regexp.MustCompile("^\\|\\s*`([A-Z_][A-Z0-9_*]*)`")
	for _, line := range strings.Split(section, "\n") {
		if m := first.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			names = append(names, m[1])
		}
	}
	return names, true
}

// envReads parses the non-test Go files under root (the module) and returns
// every variable name passed to a function named getenv, Getenv or
// LookupEnv, with where it is read. The name may be a string literal, a
// string constant (of the package or an imported one of the module), or the
// variable of a range over a package-level []string of literals; anything
// else is an error, so that no read escapes the list.
func envReads(t testing.TB, root string) map[string][]string {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	modPath := ""
	for _, l := range strings.Split(string(mod), "\n") {
		if p, ok := strings.CutPrefix(l, "module "); ok {
			modPath = strings.TrimSpace(p)
		}
	}
	fset := token.NewFileSet()
	type file struct {
		dir string
		f   *ast.File
	}
	var files []file
	consts := map[string]string{}  // dir.Name → value
	lists := map[string][]string{} // dir.Name → values
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(p))
		dir = filepath.ToSlash(dir)
		files = append(files, file{dir, f})
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if s, ok := stringLit(vs.Values[i]); ok && gd.Tok == token.CONST {
						consts[dir+"."+n.Name] = s
					}
					if cl, ok := vs.Values[i].(*ast.CompositeLit); ok && gd.Tok == token.VAR {
						var vals []string
						for _, e := range cl.Elts {
							if s, ok := stringLit(e); ok {
								vals = append(vals, s)
							}
						}
						if len(vals) == len(cl.Elts) && len(vals) > 0 {
							lists[dir+"."+n.Name] = vals
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, fl := range files {
		imports := map[string]string{} // local name → module-relative dir
		for _, im := range fl.f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			rel, ok := strings.CutPrefix(path, modPath+"/")
			if !ok {
				continue
			}
			name := rel[strings.LastIndex(rel, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = rel
		}
		resolve := func(e ast.Expr) ([]string, bool) {
			if s, ok := stringLit(e); ok {
				return []string{s}, true
			}
			switch x := e.(type) {
			case *ast.Ident:
				if s, ok := consts[fl.dir+"."+x.Name]; ok {
					return []string{s}, true
				}
				if x.Obj != nil {
					if as, ok := x.Obj.Decl.(*ast.AssignStmt); ok && len(as.Rhs) == 1 {
						if u, ok := as.Rhs[0].(*ast.UnaryExpr); ok && u.Op == token.RANGE {
							if id, ok := u.X.(*ast.Ident); ok {
								if vals, ok := lists[fl.dir+"."+id.Name]; ok {
									return vals, true
								}
							}
						}
					}
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok {
					if dir, ok := imports[id.Name]; ok {
						if s, ok := consts[dir+"."+x.Sel.Name]; ok {
							return []string{s}, true
						}
					}
				}
			}
			return nil, false
		}
		ast.Inspect(fl.f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			}
			if fn != "getenv" && fn != "Getenv" && fn != "LookupEnv" {
				return true
			}
			pos := fset.Position(call.Pos())
			at := filepath.ToSlash(filepath.Join(fl.dir, filepath.Base(pos.Filename))) + ":" + strconv.Itoa(pos.Line)
			names, ok := resolve(call.Args[0])
			if !ok {
				t.Errorf("%s: %s reads a variable whose name is not a string literal, a string constant or a range over a []string of literals; name it so that the list of variables can be checked", at, fn)
				return true
			}
			for _, name := range names {
				out[name] = append(out[name], at)
			}
			return true
		})
	}
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

func TestReadmeEnv(t *testing.T) {
	readme := "# x\n| `NOT_IN_SECTION` | a |\n<!-- env:start -->\n| variable | read by |\n|---|---|\n| `A_ONE` | plan |\n|  `B_TWO` | apply |\n| not a name | x |\n<!-- env:end -->\n| `AFTER` | b |\n"
	got, ok := readmeEnv(readme)
	if !ok || !slices.Equal(got, []string{"A_ONE", "B_TWO"}) {
		t.Errorf("readmeEnv = %q, %v, want [A_ONE B_TWO], true", got, ok)
	}
	if _, ok := readmeEnv("no markers"); ok {
		t.Errorf("readmeEnv(no markers) = ok, want not ok")
	}
}
