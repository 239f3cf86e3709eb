// Package parity enforces the parity policy (required tags, naming, regions,
// allowed and denied resource types, the backend) with Open Policy Agent
// before any state becomes mutable. Built-in Rego rules, embedded here, read
// governance/policy.yaml as data; custom rules in governance/rego/*.rego
// (package groundzero.custom, `deny contains msg if …`) are evaluated beside
// them. Inputs are the OpenTofu configuration, read statically, and the plan.
//
// Resources are normalised before evaluation so one rule serves every
// provider: tags are AWS tags_all (or tags), Google labels, OCI freeform and
// defined tags, DigitalOcean "key:value" tags; regions come from the
// resource's region or location, else its provider's region; the name is
// the resource's bucket or name. The built-in terraform_data resource is
// checked through its input object (input.tags, input.region, input.name),
// so stand-in configurations made only of built-in resources, as in demos and
// tests, are governed like cloud ones.
package parity

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

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

// LoadCustom reads governance/rego/*.rego (not *_test.rego) from dir.
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
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		mods[p] = string(data)
	}
	return mods, nil
}

// ParseCustom parses custom modules, checking their package.
func ParseCustom(mods map[string]string, display func(string) string) ([]*ast.Module, error) {
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*ast.Module
	for _, n := range names {
		m, err := ast.ParseModuleWithOpts(n, mods[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
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

// New compiles the built-in and custom rules for environment env of p.
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
	}
	for _, m := range custom {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, &RegoError{File: "governance/rego", Msg: regoMsg(err)}
	}
	return &Engine{query: pq, Env: env, withValues: len(custom) > 0}, nil
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
