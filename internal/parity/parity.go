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
// provider: tags are AWS tags_all (or default_tags merged with tags), Google
// labels, OCI freeform and defined tags, DigitalOcean "key:value" tags;
// regions come from the resource's region or location, else its provider
// configuration's, resolved as plan.go says; the name comes from the name
// attribute table (tables.go). What is unknown until apply is marked, and
// the rules report it as such. The built-in terraform_data resource is
// checked through its input object (input.tags, input.region, input.name),
// so stand-in configurations made only of built-in resources, as in demos and
// tests, are governed like cloud ones.
//
// The built-in rules (builtin.rego) judge each resource on its own, so they
// are evaluated in batches, in parallel, on resources streamed from the plan
// (EvaluatePlan): memory does not grow with the plan. Export writes the same
// rules with a Rego normalisation of raw plan JSON (plan.rego) for conftest
// and opa eval.
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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

//go:embed input.rego
var inputRego string

// CustomPackage is the package custom rules must declare.
const CustomPackage = "groundzero.custom"

// Resource is a normalised resource. Values are the raw attributes; the
// rules see them only when custom rules name the resource's type.
type Resource struct {
	Address  string            `json:"address"`
	Type     string            `json:"type"`
	Provider string            `json:"provider"`
	Actions  []string          `json:"actions"`
	Tags     map[string]string `json:"tags"` // nil: the type takes no tags
	Region   string            `json:"region"`
	Name     string            `json:"name"`
	Named    bool              `json:"named"` // the type has a name (NameAttributes)
	// Unknown lists what is unknown until apply: "tags" (the tag set may
	// have more tags), "tags.KEY" (one tag's value), "region", "name".
	Unknown []string       `json:"unknown"`
	Values  map[string]any `json:"values"`
	// File and Line locate the resource's block in a configuration.
	File string `json:"-"`
	Line int    `json:"-"`
}

// Input is what the rules see.
type Input struct {
	Source    string     `json:"source"` // "config" or "plan"
	Backend   string     `json:"backend,omitempty"`
	Resources []Resource `json:"resources"`
	// Overrides names the override files FromConfig applied, in order
	// (input.overrides; empty for a plan), so a rule can refuse them.
	Overrides []string `json:"overrides"`
	// BackendFile and BackendLine locate the backend block, if any.
	BackendFile string `json:"-"`
	BackendLine int    `json:"-"`

	err error // a plan that could not be read (FromPlan)
}

// Violation is one finding of a rule.
type Violation struct {
	Address  string `json:"address"`
	Rule     string `json:"rule"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Message  string `json:"message,omitempty"` // custom rules
	Reason   string `json:"reason,omitempty"`  // the waiver's, for a waived finding
	File     string `json:"file,omitempty"`    // configuration file, relative to the configuration directory
	Line     int    `json:"line,omitempty"`
}

func (v Violation) String() string {
	if v.Message != "" {
		return fmt.Sprintf("%s: %s: %s", v.Address, v.Rule, v.Message)
	}
	return fmt.Sprintf("%s: %s: expected %s, found %s", v.Address, v.Rule, v.Expected, v.Found)
}

// Result is what an evaluation found: denials, warnings (values unknown
// until apply, when policy.yaml says warn), and findings that a waiver
// covers.
type Result struct {
	Deny   []Violation `json:"deny"`
	Warn   []Violation `json:"warn"`
	Waived []Violation `json:"waived"`
}

// RegoError reports a custom rule file that does not compile.
type RegoError struct {
	File string
	Msg  string
}

func (e *RegoError) Error() string { return e.File + ": " + e.Msg }

// Engine is a compiled policy for one environment; Check reuses the prepared
// queries.
type Engine struct {
	builtin rego.PreparedEvalQuery
	custom  *rego.PreparedEvalQuery // nil without custom rules
	Env     string
	// customTypes are the resource types custom rules name; their values
	// are passed to the rules. nil: custom rules name none, and every
	// resource's values are passed.
	customTypes map[string]bool
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

// Data renders the data the built-in rules read (data.groundzero) for
// environment env of p: the environment's rules, the policy's type lists,
// waivers and unknown-value setting, and the type tables.
func Data(p *policy.Policy, env string) (map[string]any, error) {
	e := p.Environment(env)
	if e == nil {
		return nil, fmt.Errorf("environment %q is not declared in %s", env, p.File)
	}
	for typ := range e.Naming {
		if a, ok := NameAttributes[typ]; ok && a.Attribute == "" {
			hint := "remove it"
			if a.NamedBy != "" {
				hint = fmt.Sprintf("write the pattern for %s, which carries its name", a.NamedBy)
			}
			return nil, &policy.InvalidError{File: p.File, Msg: fmt.Sprintf("environments[%s].naming.%s: %s has no name of its own; %s", e.Name, typ, typ, hint), Hint: hint}
		}
	}
	waive := []any{}
	for i, w := range p.Parity.Waive {
		if !slices.Contains(BuiltinRules, w.Rule) {
			return nil, &policy.InvalidError{File: p.File, Msg: fmt.Sprintf("parity.waive[%d]: no built-in rule %q; the rules are %s", i, w.Rule, strings.Join(BuiltinRules, ", ")), Hint: "name a built-in rule"}
		}
		addr := w.Address
		if addr == "" {
			addr = "*"
		}
		if err := checkGlob(addr); err != nil {
			return nil, &policy.InvalidError{File: p.File, Msg: fmt.Sprintf("parity.waive[%d].address %q: %v", i, addr, err), Hint: "write a glob such as aws_route53_record.* or module.dns.*"}
		}
		if w.Env != "" && w.Env != env {
			continue
		}
		waive = append(waive, map[string]any{"rule": w.Rule, "address": addr, "reason": w.Reason})
	}
	return map[string]any{"groundzero": map[string]any{
		"env": map[string]any{
			"name": e.Name, "backend": e.Backend, "regions": orEmpty(e.Regions),
			"naming": orEmptyMap(e.Naming), "tags": orEmptyMap(e.Tags),
		},
		"policy": map[string]any{
			"denied": orEmpty(p.Resources.Denied), "allowed": orEmpty(p.Resources.Allowed),
			"backend_types": orEmpty(backendTypes(e.Backend)),
			"unknown":       p.Parity.Unknown, "waive": waive,
		},
		"tables": tablesData(),
	}}, nil
}

// checkGlob compiles a waiver's address glob as the rules' glob.match does.
func checkGlob(pattern string) error {
	q, err := json.Marshal(pattern)
	if err != nil {
		return err
	}
	_, err = rego.New(rego.Query(fmt.Sprintf(`glob.match(%s, null, "")`, q)), rego.StrictBuiltinErrors(true)).Eval(context.Background())
	return err
}

// namedTypes finds the resource types whose values custom rules read: per
// rule, the string literals compared with a reference ending in .type
// (r.type == "aws_kms_key", r.type in {...}). A rule that reads values
// without naming a type that way needs every resource's values: then
// namedTypes returns nil.
func namedTypes(mods []*ast.Module) map[string]bool {
	out := map[string]bool{}
	for _, m := range mods {
		for _, rule := range m.Rules {
			types, readsValues := map[string]bool{}, false
			ast.WalkRefs(rule, func(r ast.Ref) bool {
				for _, t := range r[1:] {
					if s, ok := t.Value.(ast.String); ok && s == "values" {
						readsValues = true
					}
				}
				return false
			})
			ast.WalkExprs(rule, func(e *ast.Expr) bool {
				if !e.IsCall() {
					return false
				}
				op := e.Operator().String()
				if op != "equal" && op != "internal.member_2" {
					return false
				}
				ops := e.Operands()
				for i, o := range ops {
					r, ok := o.Value.(ast.Ref)
					if !ok || len(r) < 2 || !r[len(r)-1].Equal(ast.StringTerm("type")) {
						continue
					}
					for j, other := range ops {
						if j != i {
							literals(other, types)
						}
					}
				}
				return false
			})
			if readsValues && len(types) == 0 {
				return nil
			}
			for t := range types {
				out[t] = true
			}
		}
	}
	return out
}

func literals(t *ast.Term, into map[string]bool) {
	switch v := t.Value.(type) {
	case ast.String:
		into[string(v)] = true
	case ast.Set:
		v.Foreach(func(x *ast.Term) { literals(x, into) })
	case *ast.Array:
		v.Foreach(func(x *ast.Term) { literals(x, into) })
	}
}

// New compiles the built-in and custom rules for environment env of p, with
// the governed capabilities (see the package comment). A custom module that
// calls a refused built-in fails with a *ForbiddenBuiltinError.
func New(ctx context.Context, p *policy.Policy, env string, custom []*ast.Module) (*Engine, error) {
	data, err := Data(p, env)
	if err != nil {
		return nil, err
	}
	base := []func(*rego.Rego){
		rego.Module("groundzero/builtin.rego", builtinRego),
		rego.Module("groundzero/input.rego", inputRego),
		rego.Store(inmem.NewFromObject(data)),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
		rego.EnablePrintStatements(false),
	}
	opts := append(slices.Clone(base), rego.Query(`deny := data.groundzero.parity.deny; warn := data.groundzero.parity.warn; waived := data.groundzero.parity.waived`))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, compileError(err)
	}
	e := &Engine{builtin: pq, Env: env}
	if len(custom) > 0 {
		opts := append(slices.Clone(base), rego.Query(`custom := object.get(data, ["groundzero", "custom", "deny"], set())`))
		for _, m := range custom {
			opts = append(opts, rego.ParsedModule(m))
		}
		cq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			return nil, compileError(err)
		}
		e.custom = &cq
		e.customTypes = namedTypes(custom)
	}
	return e, nil
}

// Values reports whether custom rules receive the values of resources of
// type typ: custom rules see the values of the types they name as string
// literals, or of every type when they name none.
func (e *Engine) Values(typ string) bool {
	if e.custom == nil {
		return false
	}
	return e.customTypes == nil || e.customTypes[typ]
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

// batchSize is how many resources one evaluation of the built-in rules
// sees: they judge each resource on its own, so batches bound memory.
const batchSize = 1000

// Check evaluates the rules on in and returns the denials, sorted.
func (e *Engine) Check(ctx context.Context, in *Input) ([]Violation, error) {
	res, err := e.Evaluate(ctx, in)
	if err != nil {
		return nil, err
	}
	return res.Deny, nil
}

// Evaluate evaluates the rules on in. Values unknown until apply are judged
// on a plan only: in a configuration they are left to the plan check.
func (e *Engine) Evaluate(ctx context.Context, in *Input) (*Result, error) {
	if in.err != nil {
		return nil, in.err
	}
	batches := make(chan []Resource)
	go func() {
		defer close(batches)
		for start := 0; start == 0 || start < len(in.Resources); start += batchSize {
			select {
			case batches <- in.Resources[start:min(start+batchSize, len(in.Resources))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	out, err := e.evalBatches(ctx, in, batches)
	if err != nil {
		return nil, err
	}
	// A cancelled evaluation may have skipped batches: it finds nothing.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.custom != nil {
		rs, err := e.custom.Eval(ctx, rego.EvalParsedInput(e.customInput(in)))
		if err != nil {
			return nil, fmt.Errorf("evaluating the custom rules: %v", err)
		}
		for _, r := range rs {
			out.Deny = append(out.Deny, decode(r.Bindings["custom"], "custom")...)
		}
	}
	if in.Source == "config" {
		out.Deny = slices.DeleteFunc(out.Deny, func(v Violation) bool { return v.Rule == "unknown" })
		out.Warn = slices.DeleteFunc(out.Warn, func(v Violation) bool { return v.Rule == "unknown" })
	}
	locate(in, out)
	for _, vs := range [][]Violation{out.Deny, out.Warn, out.Waived} {
		sortViolations(vs)
	}
	return out, nil
}

// evalBatches evaluates the built-in rules on each batch of resources, on
// every core; the first batch also carries the input's backend.
func (e *Engine) evalBatches(ctx context.Context, in *Input, batches <-chan []Resource) (*Result, error) {
	type job struct {
		res   []Resource
		first bool
	}
	jobs := make(chan job)
	results := make(chan Result)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				rs, err := e.builtin.Eval(ctx, rego.EvalParsedInput(inputValue(in, j.res, j.first, false)))
				if err != nil {
					select {
					case errs <- fmt.Errorf("evaluating the parity policy: %v", err):
					default:
					}
					continue
				}
				var r Result
				for _, b := range rs {
					r.Deny = append(r.Deny, decode(b.Bindings["deny"], "")...)
					r.Warn = append(r.Warn, decode(b.Bindings["warn"], "")...)
					r.Waived = append(r.Waived, decode(b.Bindings["waived"], "")...)
				}
				results <- r
			}
		}()
	}
	go func() {
		first := true
		for b := range batches {
			jobs <- job{b, first}
			first = false
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	out := &Result{}
	for r := range results {
		out.Deny = append(out.Deny, r.Deny...)
		out.Warn = append(out.Warn, r.Warn...)
		out.Waived = append(out.Waived, r.Waived...)
	}
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return out, nil
}

// EvaluatePlan evaluates the rules on the plan JSON in r, which it reads
// twice (StreamPlan): resources are evaluated in batches as they are read
// and not kept, so memory does not grow with the plan. With custom rules,
// which may look at every resource at once, the resources are kept and
// evaluated together. It returns the findings and the number of resources
// checked.
func (e *Engine) EvaluatePlan(ctx context.Context, r io.ReadSeeker) (*Result, int, error) {
	if e.custom != nil {
		in := &Input{Source: "plan", Resources: []Resource{}}
		if err := StreamPlan(r, e.Values, func(res Resource) error {
			in.Resources = append(in.Resources, res)
			return nil
		}); err != nil {
			return nil, 0, err
		}
		res, err := e.Evaluate(ctx, in)
		return res, len(in.Resources), err
	}
	in := &Input{Source: "plan"}
	batches := make(chan []Resource)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := e.evalBatches(ctx, in, batches)
		done <- outcome{res, err}
	}()
	count := 0
	batch := make([]Resource, 0, batchSize)
	err := StreamPlan(r, nil, func(res Resource) error {
		count++
		batch = append(batch, res)
		if len(batch) == batchSize {
			batches <- batch
			batch = make([]Resource, 0, batchSize)
		}
		return nil
	})
	if err == nil && (len(batch) > 0 || count == 0) {
		batches <- batch
	}
	close(batches)
	o := <-done
	if err != nil {
		return nil, 0, err
	}
	if o.err != nil {
		return nil, 0, o.err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	for _, vs := range [][]Violation{o.res.Deny, o.res.Warn, o.res.Waived} {
		sortViolations(vs)
	}
	return o.res, count, nil
}

func (e *Engine) customInput(in *Input) ast.Value {
	terms := make([]*ast.Term, len(in.Resources))
	for i := range in.Resources {
		terms[i] = resourceValue(&in.Resources[i], e.Values(in.Resources[i].Type))
	}
	v := inputValue(in, nil, true, false).(ast.Object)
	v.Insert(ast.StringTerm("resources"), ast.ArrayTerm(terms...))
	return v
}

// locate fills the file and line of findings on a configuration.
func locate(in *Input, res *Result) {
	if in.Source != "config" {
		return
	}
	at := make(map[string]*Resource, len(in.Resources))
	for i := range in.Resources {
		at[in.Resources[i].Address] = &in.Resources[i]
	}
	for _, vs := range [][]Violation{res.Deny, res.Warn, res.Waived} {
		for i := range vs {
			if r := at[vs[i].Address]; r != nil {
				vs[i].File, vs[i].Line = r.File, r.Line
			} else if vs[i].Address == "terraform.backend" {
				vs[i].File, vs[i].Line = in.BackendFile, in.BackendLine
			}
		}
	}
}

func sortViolations(vs []Violation) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Address != vs[j].Address {
			return vs[i].Address < vs[j].Address
		}
		return vs[i].String() < vs[j].String()
	})
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
			viol.Reason, _ = t["reason"].(string)
			if rule == "custom" {
				viol.Message, _ = t["msg"].(string)
			}
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
