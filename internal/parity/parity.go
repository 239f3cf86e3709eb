// Package parity enforces the parity policy (required tags, naming, regions,
// allowed and denied resource types, the backend) with Open Policy Agent
// before any state becomes mutable. Built-in Rego rules, embedded here, read
// governance/policy.yaml as data; custom rules in governance/rego/*.rego
// (package groundzero.custom, `deny contains msg if …`) are evaluated beside
// them. Inputs are the OpenTofu configuration, read statically and merged
// with its override files as OpenTofu merges them (FromConfig; config.go
// says what is read), and the plan.
//
// Resources are normalised before evaluation so one rule serves every
// provider: tags are AWS tags_all (or tags), Google labels, OCI freeform and
// defined tags, DigitalOcean "key:value" tags; regions come from the
// resource's region or location, else its provider's region; the name is
// the resource's bucket or name. The built-in terraform_data resource is
// checked through its input object (input.tags, input.region, input.name),
// so stand-in configurations made only of built-in resources, as in demos and
// tests, are governed like cloud ones.
//
// # What policy may do
//
// Policy decides from its input (the configuration or plan) and
// policy.yaml alone. Every rule, built-in or custom, is compiled with OPA
// capabilities that leave out each built-in that reaches the network, reads
// the environment, the clock or a random source, which OPA marks
// non-deterministic: http.send (HTTP requests), net.lookup_ip_addr (DNS),
// opa.runtime (the process environment and OPA's configuration),
// json.match_schema and json.verify_schema (they fetch remote $ref
// schemas), io.jwt.decode_verify (the clock), io.jwt.encode_sign and
// io.jwt.encode_sign_raw (randomness), rand.intn, time.now_ns and
// uuid.rfc4122, plus any built-in a later OPA marks non-deterministic.
// providers.aws.sign_req goes too: it signs AWS requests, which only
// http.send could send. The capabilities allow no network host at all
// (allow_net is empty), so a schema annotation cannot fetch a remote $ref
// either, and evaluation is never given a runtime value (rego.Runtime) or
// the environment.
//
// Pure built-ins stay: net.cidr_* (arithmetic on addresses), regex, glob,
// strings, sprintf, object, array, set, aggregate, encoding (base64, hex,
// json, yaml, urlquery), crypto hashes, HMACs, x509 and JWT parsing and
// verification with a given key, semver, graphql parsing, time parsing and
// formatting of given timestamps, units, uuid.parse and rego.metadata.*.
// print stays declared but is erased at compile time, since print
// statements are not enabled; trace only writes to a tracer, and none is
// attached. A module that calls a refused built-in does not compile: New
// returns a *ForbiddenBuiltinError naming the file and line. RunTests runs
// the custom rules' Rego tests under the same capabilities.
package parity

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/groundzero/groundzero/internal/policy"
)

//go:embed builtin.rego
var builtinRego string

// CustomPackage is the package custom rules must declare.
const CustomPackage = "groundzero.custom"

// Resource is a normalised resource. Values are the raw attributes; the
// rules see them only when custom rules are loaded.
type Resource struct {
	Address  string            `json:"address"`
	Type     string            `json:"type"`
	Provider string            `json:"provider"`
	Actions  []string          `json:"actions"`
	Tags     map[string]string `json:"tags"` // nil: the type takes no tags
	Region   string            `json:"region"`
	Name     string            `json:"name"`
	Values   map[string]any    `json:"values"`
}

// Input is what the rules see.
type Input struct {
	Source    string     `json:"source"` // "config" or "plan"
	Backend   string     `json:"backend,omitempty"`
	Resources []Resource `json:"resources"`
	// Overrides names the override files FromConfig applied, in order
	// (input.overrides; empty for a plan), so a rule can refuse them.
	Overrides []string `json:"overrides"`
}

// Violation is one broken rule.
type Violation struct {
	Address  string `json:"address"`
	Rule     string `json:"rule"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Message  string `json:"message,omitempty"` // custom rules
}

func (v Violation) String() string {
	if v.Message != "" {
		return fmt.Sprintf("%s: %s: %s", v.Address, v.Rule, v.Message)
	}
	return fmt.Sprintf("%s: %s: expected %s, found %s", v.Address, v.Rule, v.Expected, v.Found)
}

// RegoError reports a custom rule file that does not compile.
type RegoError struct {
	File string
	Msg  string
}

func (e *RegoError) Error() string { return e.File + ": " + e.Msg }

// Engine is a compiled policy for one environment; Check reuses the prepared
// query.
type Engine struct {
	query rego.PreparedEvalQuery
	Env   string
	// withValues passes each resource's raw values to the rules; only
	// custom rules read them, so without custom rules they are left out.
	withValues bool
}

// backendTypes maps a backend kind to the OpenTofu backend types that serve it.
func backendTypes(kind string) []string {
	switch kind {
	case "local":
		return []string{"local"}
	case "gcs":
		return []string{"gcs"}
	case "oci":
		return []string{"s3", "oci"}
	}
	return []string{"s3"}
}

// MaxRegoFile bounds one custom rule file.
const MaxRegoFile = 1 << 20

// TooLargeError reports an input file over its size limit.
type TooLargeError struct {
	File  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes, the limit for one file; split it or remove what does not belong there", e.File, e.Limit)
}

// readBounded reads at most limit bytes of path.
func readBounded(path, display string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{File: display, Limit: limit}
	}
	return data, nil
}

// LoadCustom reads governance/rego/*.rego (not *_test.rego) from dir, each
// at most 1 MiB.
func LoadCustom(dir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, err
	}
	mods := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		data, err := readBounded(p, p, MaxRegoFile)
		if err != nil {
			return nil, err
		}
		mods[p] = string(data)
	}
	return mods, nil
}

// ParseCustom parses custom modules, checking their package. Each module is
// named display(path), so later compile errors name the file as the user
// knows it.
func ParseCustom(mods map[string]string, display func(string) string) ([]*ast.Module, error) {
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*ast.Module
	seen := map[string]string{}
	for _, n := range names {
		// Modules are keyed by name: two files shown alike would hide one.
		if prev, dup := seen[display(n)]; dup {
			return nil, &RegoError{File: display(n), Msg: fmt.Sprintf("shown the same as %s; rename one", prev)}
		}
		seen[display(n)] = n
		m, err := ast.ParseModuleWithOpts(display(n), mods[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, &RegoError{File: display(n), Msg: regoMsg(err)}
		}
		if got := strings.TrimPrefix(m.Package.Path.String(), "data."); got != CustomPackage {
			return nil, &RegoError{File: display(n), Msg: fmt.Sprintf("package is %s; custom rules belong in package %s", got, CustomPackage)}
		}
		out = append(out, m)
	}
	return out, nil
}

func regoMsg(err error) string {
	var errs ast.Errors
	if errors.As(err, &errs) && len(errs) > 0 {
		e := errs[0]
		if e.Location != nil {
			return fmt.Sprintf("line %d: %s", e.Location.Row, e.Message)
		}
		return e.Message
	}
	return err.Error()
}

// ForbiddenBuiltinError reports a rule that calls a built-in governed policy
// may not use: one that reaches the network, reads the environment, the
// clock or a random source.
type ForbiddenBuiltinError struct {
	File    string
	Line    int
	Builtin string
	Reason  string // what the built-in does that policy may not
}

func (e *ForbiddenBuiltinError) Error() string {
	return fmt.Sprintf("%s:%d: built-in %s is not allowed in governed policy (%s); remove the call: rules decide from input and policy.yaml alone", e.File, e.Line, e.Builtin, e.Reason)
}

// refusedBuiltins names the built-ins left out of the capabilities, and why.
var refusedBuiltins = sync.OnceValue(func() map[string]string {
	out := map[string]string{
		"http.send":              "it sends HTTP requests",
		"net.lookup_ip_addr":     "it sends DNS queries",
		"opa.runtime":            "it reads the process environment",
		"json.match_schema":      "it fetches remote $ref schemas",
		"json.verify_schema":     "it fetches remote $ref schemas",
		"io.jwt.decode_verify":   "it reads the clock",
		"io.jwt.encode_sign":     "it reads the random source",
		"io.jwt.encode_sign_raw": "it reads the random source",
		"rand.intn":              "it reads the random source",
		"time.now_ns":            "it reads the clock",
		"uuid.rfc4122":           "it reads the random source",
		"providers.aws.sign_req": "it signs AWS requests, which only http.send could send",
	}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if _, ok := out[b.Name]; !ok && b.Nondeterministic {
			out[b.Name] = "OPA marks it non-deterministic: it may do I/O or read the environment"
		}
	}
	return out
})

// RefusedBuiltins lists the built-ins governed policy may not call, sorted.
func RefusedBuiltins() []string {
	var out []string
	for n := range refusedBuiltins() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// capabilities are OPA's, less the refused built-ins, with no network host
// allowed (a nil AllowNet would allow every host).
func capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	refused := refusedBuiltins()
	kept := c.Builtins[:0]
	for _, b := range c.Builtins {
		if _, ok := refused[b.Name]; !ok {
			kept = append(kept, b)
		}
	}
	c.Builtins = kept
	c.AllowNet = []string{}
	return c
}

// compileError names the file and line of the first compile error, and
// reports a call to a refused built-in as such.
func compileError(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		return &RegoError{File: "governance/rego", Msg: err.Error()}
	}
	for _, e := range errs {
		name, ok := strings.CutPrefix(e.Message, "undefined function ")
		if !ok || e.Location == nil {
			continue
		}
		if reason, refused := refusedBuiltins()[name]; refused {
			return &ForbiddenBuiltinError{File: e.Location.File, Line: e.Location.Row, Builtin: name, Reason: reason}
		}
	}
	file := "governance/rego"
	if l := errs[0].Location; l != nil && l.File != "" {
		file = l.File
	}
	return &RegoError{File: file, Msg: regoMsg(err)}
}

// New compiles the built-in and custom rules for environment env of p, with
// the governed capabilities (see the package comment). A custom module that
// calls a refused built-in fails with a *ForbiddenBuiltinError.
func New(ctx context.Context, p *policy.Policy, env string, custom []*ast.Module) (*Engine, error) {
	e := p.Environment(env)
	if e == nil {
		return nil, fmt.Errorf("environment %q is not declared in %s", env, p.File)
	}
	data := map[string]any{"groundzero": map[string]any{
		"env": map[string]any{
			"name": e.Name, "backend": e.Backend, "regions": orEmpty(e.Regions),
			"naming": orEmptyMap(e.Naming), "tags": orEmptyMap(e.Tags),
		},
		"policy": map[string]any{
			"denied": orEmpty(p.Resources.Denied), "allowed": orEmpty(p.Resources.Allowed),
			"backend_types": backendTypes(e.Backend),
		},
	}}
	opts := []func(*rego.Rego){
		rego.Query(`parity := data.groundzero.parity.deny; custom := object.get(data, ["groundzero", "custom", "deny"], set())`),
		rego.Module("groundzero/builtin.rego", builtinRego),
		rego.Store(inmem.NewFromObject(data)),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
		rego.EnablePrintStatements(false),
	}
	for _, m := range custom {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, compileError(err)
	}
	return &Engine{query: pq, Env: env, withValues: len(custom) > 0}, nil
}

// RunTests runs the Rego tests (test_* rules) of mods, the custom rules and
// their *_test.rego files, with the governed capabilities: a module that
// calls a refused built-in fails with a *ForbiddenBuiltinError, as in New,
// and no test runs. Modules are keyed and named by the file they came from.
func RunTests(ctx context.Context, mods map[string]*ast.Module) (chan *tester.Result, error) {
	compiler := ast.NewCompiler().
		WithCapabilities(capabilities()).
		WithEnablePrintStatements(false).
		WithDefaultRegoVersion(ast.RegoV1)
	ch, err := tester.NewRunner().SetCompiler(compiler).SetDefaultRegoVersion(ast.RegoV1).Run(ctx, mods)
	if err != nil {
		return nil, compileError(err)
	}
	return ch, nil
}

func orEmpty(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func orEmptyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Check evaluates the rules on in and returns the violations, sorted.
func (e *Engine) Check(ctx context.Context, in *Input) ([]Violation, error) {
	iv, err := toValue(in, e.withValues)
	if err != nil {
		return nil, err
	}
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(iv))
	if err != nil {
		return nil, fmt.Errorf("evaluating the parity policy: %v", err)
	}
	var out []Violation
	for _, r := range rs {
		out = append(out, decode(r.Bindings["parity"], "")...)
		out = append(out, decode(r.Bindings["custom"], "custom")...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].String() < out[j].String()
	})
	return out, nil
}

func decode(v any, rule string) []Violation {
	set, _ := v.([]any)
	var out []Violation
	for _, x := range set {
		switch t := x.(type) {
		case string:
			out = append(out, Violation{Address: "(custom)", Rule: "custom", Message: t})
		case map[string]any:
			viol := Violation{Rule: rule}
			viol.Address, _ = t["address"].(string)
			if r, ok := t["rule"].(string); ok {
				viol.Rule = r
			}
			viol.Expected, _ = t["expected"].(string)
			viol.Found, _ = t["found"].(string)
			viol.Message, _ = t["msg"].(string)
			if viol.Address == "" {
				viol.Address = "(custom)"
			}
			if viol.Rule == "" {
				viol.Rule = "custom"
			}
			if viol.Message == "" && viol.Expected == "" {
				viol.Message = fmt.Sprint(t)
			}
			out = append(out, viol)
		default:
			out = append(out, Violation{Address: "(custom)", Rule: "custom", Message: fmt.Sprint(t)})
		}
	}
	return out
}
