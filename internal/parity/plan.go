package parity

// Reading plan JSON (`tofu show -json PLANFILE`, the terraform-json schema).
//
// The plan is streamed: of resource_changes, each element's address, type,
// name, mode, module_address, actions, and the attributes of after and
// after_unknown that the built-in rules read (tags, labels, region,
// location, the type's name attribute, terraform_data's input) are kept, the
// whole after object only for the resource types that custom rules name.
// Of configuration, the provider configurations and, per module, each
// managed resource's provider_config_key, the module calls' expressions and
// the variables' defaults are kept; the root variables' values are kept.
// Everything else (planned_values, prior_state, before, …) is skipped
// without being held in memory.
//
// Which resources are checked. Managed resources whose actions include
// create or update: ["create"], ["update"], replacements, and
// ["forget", "create"]. ["forget"] (a removed block with destroy = false),
// ["delete"], ["read"] and ["no-op"] are not checked: they create nothing.
//
// Regions. A resource's own region attribute (location or region for
// Google) wins; when after_unknown marks it, the region is unknown until
// apply. Otherwise the region is its provider configuration's: the one its
// provider_config_key names in configuration (OpenTofu resolves passed
// provider configurations and aliases to the configuration that declares
// them), else its module's or an ancestor module's default configuration of
// that provider. A provider's region that is a constant is read; one that
// is exactly one variable (var.NAME) is that variable's value: for the root
// module from the plan's variables, for a module from the module call's
// argument (followed up through at most maxVarDepth modules) or the
// variable's default. Any other expression makes the region unknown until
// apply. A provider configuration with no region argument gives no region,
// and the region rule does not apply.
//
// Tags. AWS: tags_all when it is known; when it is unknown (a tag value is
// unknown at plan time), the provider's default_tags merged with the
// resource's tags, their unknown values marked. Google: effective_labels,
// else default_labels and labels the same way. A tag whose value is null is
// absent.

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxVarDepth bounds how many module levels a variable is followed through.
const maxVarDepth = 8

// PlanError reports plan JSON that cannot be read.
type PlanError struct {
	Offset int64 // byte offset, when known
	Msg    string
}

func (e *PlanError) Error() string {
	if e.Offset > 0 {
		return fmt.Sprintf("not plan JSON at byte %d: %s", e.Offset, e.Msg)
	}
	return "not plan JSON: " + e.Msg
}

type providerConfig struct {
	Name          string         `json:"name"`
	Alias         string         `json:"alias"`
	ModuleAddress string         `json:"module_address"`
	Expressions   map[string]any `json:"expressions"`
}

type configModule struct {
	keys      map[string]string // "type.name" of a managed resource -> provider_config_key
	calls     map[string]*moduleCall
	variables map[string]map[string]any // name -> its declaration ("default" when it has one)
}

type moduleCall struct {
	expressions map[string]any
	module      *configModule
}

type rawResource struct {
	res      Resource
	name     string // the name in configuration
	module   string // module address without instance keys
	after    map[string]any
	unknown  map[string]any
	allUnkwn bool
}

type planReader struct {
	dec    *jsontext.Decoder
	values func(typ string) bool
	// pass selects what is read: configuration and variables only
	// (passConfig), resource changes only (passChanges, each given to
	// yield with the configuration already read), or both (passAll).
	pass      int
	yield     func(Resource) error
	yieldErr  error
	format    string
	variables map[string]any
	providers map[string]providerConfig
	root      *configModule
	raws      []*rawResource
}

const (
	passAll = iota
	passConfig
	passChanges
)

// ReadPlan reads plan JSON from r as the comment at the top of plan.go
// says, and normalises it. values reports the resource types whose whole
// after object custom rules receive (nil: none). Configuration comes after
// resource_changes in plan JSON, so a reader that cannot seek keeps each
// change's rule attributes until the end; StreamPlan reads a file twice
// instead and keeps nothing.
func ReadPlan(r io.Reader, values func(typ string) bool) (*Input, error) {
	pr := newPlanReader(r, values, passAll)
	if err := pr.run(); err != nil {
		return nil, err
	}
	return pr.input(), nil
}

// StreamPlan reads plan JSON from r in two passes, configuration and
// variables first, then resource_changes, and calls yield with each
// resource to check, normalised, as soon as it is read.
func StreamPlan(r io.ReadSeeker, values func(typ string) bool, yield func(Resource) error) error {
	first := newPlanReader(r, values, passConfig)
	if err := first.run(); err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	second := newPlanReader(r, values, passChanges)
	second.variables, second.providers, second.root, second.format = first.variables, first.providers, first.root, first.format
	second.yield = yield
	return second.run()
}

func newPlanReader(r io.Reader, values func(typ string) bool, pass int) *planReader {
	pr := &planReader{dec: jsontext.NewDecoder(r), values: values, pass: pass}
	if values == nil {
		pr.values = func(string) bool { return false }
	}
	return pr
}

func (pr *planReader) run() error {
	err := pr.read()
	if err == nil {
		return nil
	}
	var pe *PlanError
	if errors.As(err, &pe) {
		return pe
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return &PlanError{Offset: se.ByteOffset, Msg: se.Err.Error()}
	}
	// An error of yield is the caller's.
	if pr.yieldErr != nil && errors.Is(err, pr.yieldErr) {
		return err
	}
	return &PlanError{Offset: pr.dec.InputOffset(), Msg: err.Error()}
}

func (pr *planReader) expect(kind jsontext.Kind) error {
	tok, err := pr.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != kind {
		return fmt.Errorf("expected %v, found %v", kind, tok.Kind())
	}
	return nil
}

// object calls f for each member name of the object that comes next; f
// reads or skips the value.
func (pr *planReader) object(f func(name string) error) error {
	if pr.dec.PeekKind() == 'n' {
		return pr.dec.SkipValue()
	}
	if err := pr.expect('{'); err != nil {
		return err
	}
	for pr.dec.PeekKind() != '}' {
		tok, err := pr.dec.ReadToken()
		if err != nil {
			return err
		}
		if err := f(tok.String()); err != nil {
			return err
		}
	}
	_, err := pr.dec.ReadToken()
	return err
}

// array calls f for each element of the array that comes next.
func (pr *planReader) array(f func() error) error {
	if pr.dec.PeekKind() == 'n' {
		return pr.dec.SkipValue()
	}
	if err := pr.expect('['); err != nil {
		return err
	}
	for pr.dec.PeekKind() != ']' {
		if err := f(); err != nil {
			return err
		}
	}
	_, err := pr.dec.ReadToken()
	return err
}

func (pr *planReader) decode(v any) error { return json.UnmarshalDecode(pr.dec, v) }

func (pr *planReader) str() (string, error) {
	if pr.dec.PeekKind() != '"' {
		return "", pr.dec.SkipValue()
	}
	tok, err := pr.dec.ReadToken()
	return tok.String(), err
}

func (pr *planReader) read() error {
	if pr.dec.PeekKind() != '{' {
		return &PlanError{Msg: "the plan is not a JSON object"}
	}
	err := pr.object(func(name string) error {
		switch name {
		case "format_version":
			if pr.pass == passChanges {
				return pr.dec.SkipValue()
			}
			s, err := pr.str()
			pr.format = s
			return err
		case "variables":
			if pr.pass == passChanges {
				return pr.dec.SkipValue()
			}
			var vars map[string]struct {
				Value any `json:"value"`
			}
			if err := pr.decode(&vars); err != nil {
				return err
			}
			pr.variables = make(map[string]any, len(vars))
			for k, v := range vars {
				pr.variables[k] = v.Value
			}
			return nil
		case "resource_changes":
			if pr.pass == passConfig {
				return pr.dec.SkipValue()
			}
			return pr.array(pr.resourceChange)
		case "configuration":
			if pr.pass == passChanges {
				return pr.dec.SkipValue()
			}
			return pr.object(func(name string) error {
				switch name {
				case "provider_config":
					return pr.decode(&pr.providers)
				case "root_module":
					m, err := pr.module()
					pr.root = m
					return err
				}
				return pr.dec.SkipValue()
			})
		}
		return pr.dec.SkipValue()
	})
	if err != nil {
		return err
	}
	if tok, err := pr.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("more than one JSON value (%v after the plan)", tok.Kind())
		}
		return err
	}
	if pr.pass == passChanges {
		return nil
	}
	if major, _, _ := strings.Cut(pr.format, "."); major != "1" {
		if pr.format == "" {
			return &PlanError{Msg: "it has no format_version"}
		}
		return &PlanError{Msg: fmt.Sprintf("format_version %q is not 1.x", pr.format)}
	}
	return nil
}

func (pr *planReader) module() (*configModule, error) {
	m := &configModule{keys: map[string]string{}, calls: map[string]*moduleCall{}}
	err := pr.object(func(name string) error {
		switch name {
		case "resources":
			return pr.array(func() error {
				var cr struct {
					Address           string `json:"address"`
					Mode              string `json:"mode"`
					ProviderConfigKey string `json:"provider_config_key"`
				}
				if err := pr.decode(&cr); err != nil {
					return err
				}
				if cr.Mode == "managed" {
					m.keys[cr.Address] = cr.ProviderConfigKey
				}
				return nil
			})
		case "module_calls":
			return pr.object(func(call string) error {
				mc := &moduleCall{}
				m.calls[call] = mc
				return pr.object(func(name string) error {
					switch name {
					case "expressions":
						return pr.decode(&mc.expressions)
					case "module":
						sub, err := pr.module()
						mc.module = sub
						return err
					}
					return pr.dec.SkipValue()
				})
			})
		case "variables":
			return pr.decode(&m.variables)
		}
		return pr.dec.SkipValue()
	})
	return m, err
}

// kept is the attributes of after that the built-in rules read.
var kept = map[string]bool{
	"tags": true, "tags_all": true, "labels": true, "effective_labels": true,
	"freeform_tags": true, "defined_tags": true, "region": true, "location": true, "input": true,
}

func keepAttr(typ, name string) bool {
	if kept[name] {
		return true
	}
	if a, ok := NameAttributes[typ]; ok {
		return a.Attribute == name
	}
	for _, a := range defaultNames(providerOf(typ)) {
		if a == name {
			return true
		}
	}
	return false
}

// selected reads the object that comes next, keeping the members keep
// accepts; a null gives nil.
func (pr *planReader) selected(keep func(string) bool) (map[string]any, error) {
	if pr.dec.PeekKind() != '{' {
		return nil, pr.dec.SkipValue()
	}
	out := map[string]any{}
	err := pr.object(func(name string) error {
		if !keep(name) {
			return pr.dec.SkipValue()
		}
		var v any
		if err := pr.decode(&v); err != nil {
			return err
		}
		out[name] = v
		return nil
	})
	return out, err
}

func (pr *planReader) resourceChange() error {
	raw := &rawResource{}
	var mode, moduleAddr string
	checked := false
	full := false
	keep := func(name string) bool { return full || raw.res.Type == "" || keepAttr(raw.res.Type, name) }
	err := pr.object(func(name string) error {
		var err error
		switch name {
		case "address":
			raw.res.Address, err = pr.str()
		case "type":
			raw.res.Type, err = pr.str()
			full = pr.values(raw.res.Type)
		case "name":
			raw.name, err = pr.str()
		case "mode":
			mode, err = pr.str()
		case "module_address":
			moduleAddr, err = pr.str()
			raw.module = staticModule(moduleAddr)
		case "change":
			err = pr.object(func(name string) error {
				switch name {
				case "actions":
					if err := pr.decode(&raw.res.Actions); err != nil {
						return err
					}
					for _, a := range raw.res.Actions {
						checked = checked || a == "create" || a == "update"
					}
					return nil
				case "after":
					a, err := pr.selected(keep)
					raw.after = a
					return err
				case "after_unknown":
					if pr.dec.PeekKind() == 't' {
						raw.allUnkwn = true
						return pr.dec.SkipValue()
					}
					u, err := pr.selected(keep)
					raw.unknown = u
					return err
				}
				return pr.dec.SkipValue()
			})
		default:
			err = pr.dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return err
	}
	if mode != "managed" || !checked {
		return nil
	}
	if raw.res.Address == "" || raw.res.Type == "" {
		return &PlanError{Offset: pr.dec.InputOffset(), Msg: "a resource change has no address or type"}
	}
	if raw.name == "" {
		raw.name = resourceName(raw.res.Address, moduleAddr)
	}
	raw.res.Provider = providerOf(raw.res.Type)
	if full && raw.after != nil {
		raw.res.Values = raw.after
	}
	if !full {
		// Keep only what normalise reads.
		for k := range raw.after {
			if !keepAttr(raw.res.Type, k) {
				delete(raw.after, k)
			}
		}
	}
	if pr.yield != nil {
		if err := pr.yield(pr.normalised(raw)); err != nil {
			pr.yieldErr = err
			return err
		}
		return nil
	}
	pr.raws = append(pr.raws, raw)
	return nil
}

// instanceKey matches an instance key of a module address: [0] or ["x"].
var instanceKey = regexp.MustCompile(`\[(?:"(?:[^"\\]|\\.)*"|[0-9]+)\]`)

// staticModule drops instance keys from a module address:
// module.a["x"].module.b[0] is module.a.module.b.
func staticModule(addr string) string {
	if !strings.Contains(addr, "[") {
		return addr
	}
	return instanceKey.ReplaceAllString(addr, "")
}

// resourceName is the name part of a resource address without its
// module path (moduleAddr, as the plan writes it) and instance key:
// module.m["x"].aws_s3_bucket.data[3] gives data.
func resourceName(addr, moduleAddr string) string {
	if moduleAddr != "" {
		addr = strings.TrimPrefix(addr, moduleAddr+".")
	}
	if j := strings.IndexByte(addr, '['); j >= 0 {
		addr = addr[:j]
	}
	_, name, _ := strings.Cut(addr, ".")
	return name
}

// moduleAt finds the configuration of the module at a static address.
func (pr *planReader) moduleAt(addr string) *configModule {
	m := pr.root
	if addr == "" || m == nil {
		return m
	}
	parts := strings.Split(addr, ".") // module, NAME, module, NAME, …
	for i := 1; i < len(parts); i += 2 {
		mc := m.calls[parts[i]]
		if mc == nil || mc.module == nil {
			return nil
		}
		m = mc.module
	}
	return m
}

// parentModule splits module.a.module.b into module.a and b.
func parentModule(addr string) (parent, call string) {
	i := strings.LastIndex(addr, "module.")
	if i <= 0 {
		return "", strings.TrimPrefix(addr, "module.")
	}
	return addr[:i-1], addr[i+len("module."):]
}

// Value states of a resolved expression.
type state int

const (
	absent state = iota
	known
	unknownState
)

// resolve evaluates a configuration expression of the module at mod, as
// far as plan JSON allows: a constant, or exactly one variable.
func (pr *planReader) resolve(expr any, mod string, depth int) (any, state) {
	e, ok := expr.(map[string]any)
	if !ok {
		return nil, absent
	}
	if v, ok := e["constant_value"]; ok {
		if v == nil {
			return nil, absent
		}
		return v, known
	}
	refs, _ := e["references"].([]any)
	if len(refs) == 1 {
		if ref, _ := refs[0].(string); strings.HasPrefix(ref, "var.") && !strings.Contains(ref[4:], ".") && !strings.Contains(ref[4:], "[") {
			return pr.variable(ref[4:], mod, depth)
		}
	}
	return nil, unknownState
}

func (pr *planReader) variable(name, mod string, depth int) (any, state) {
	if depth >= maxVarDepth {
		return nil, unknownState
	}
	if mod == "" {
		v, ok := pr.variables[name]
		if !ok {
			return nil, unknownState
		}
		if v == nil {
			return nil, absent
		}
		return v, known
	}
	parent, call := parentModule(mod)
	pm := pr.moduleAt(parent)
	if pm == nil || pm.calls[call] == nil {
		return nil, unknownState
	}
	mc := pm.calls[call]
	if e, ok := mc.expressions[name]; ok {
		return pr.resolve(e, parent, depth+1)
	}
	if mc.module != nil {
		if decl, ok := mc.module.variables[name]; ok {
			if def, ok := decl["default"]; ok {
				if def == nil {
					return nil, absent
				}
				return def, known
			}
		}
	}
	return nil, unknownState
}

// provider finds the provider configuration a resource uses.
func (pr *planReader) provider(raw *rawResource) (providerConfig, bool) {
	key := ""
	if m := pr.moduleAt(raw.module); m != nil {
		key = m.keys[raw.res.Type+"."+raw.name]
	}
	if key == "" {
		key = raw.res.Provider
		if raw.res.Provider == "builtin" {
			key = "terraform"
		}
		if raw.module != "" {
			key = raw.module + ":" + key
		}
	}
	for {
		if pc, ok := pr.providers[key]; ok {
			return pc, true
		}
		// A module without its own configuration of the provider uses its
		// parent's default one.
		mod, local, ok := strings.Cut(key, ":")
		if !ok {
			return providerConfig{}, false
		}
		parent, _ := parentModule(mod)
		local, _, _ = strings.Cut(local, ".")
		if parent == "" {
			key = local
		} else {
			key = parent + ":" + local
		}
	}
}

// providerInfo is what a resource takes from its provider configuration.
type providerInfo struct {
	region             string
	regionUnknown      bool
	defaultTags        map[string]string
	defaultTagsUnknown bool
}

func (pr *planReader) providerInfo(raw *rawResource) providerInfo {
	var info providerInfo
	pc, ok := pr.provider(raw)
	if !ok {
		return info
	}
	if v, st := pr.resolve(pc.Expressions["region"], pc.ModuleAddress, 0); st == known {
		info.region, _ = v.(string)
	} else if st == unknownState {
		info.regionUnknown = true
	}
	var tagsExpr any
	switch raw.res.Provider {
	case "aws":
		// default_tags is a block: a list of one object of expressions.
		if blocks, ok := pc.Expressions["default_tags"].([]any); ok && len(blocks) > 0 {
			if b, ok := blocks[0].(map[string]any); ok {
				tagsExpr = b["tags"]
			}
		}
	case "google":
		tagsExpr = pc.Expressions["default_labels"]
	}
	if tagsExpr != nil {
		v, st := pr.resolve(tagsExpr, pc.ModuleAddress, 0)
		switch st {
		case known:
			info.defaultTags = stringMap(map[string]any{"t": v}, "t")
		case unknownState:
			info.defaultTagsUnknown = true
		}
	}
	return info
}

func (pr *planReader) normalised(raw *rawResource) Resource {
	r := raw.res
	normalise(&r, raw.after, unknownOf(raw.unknown, raw.allUnkwn), pr.providerInfo(raw))
	return r
}

func (pr *planReader) input() *Input {
	in := &Input{Source: "plan", Resources: make([]Resource, 0, len(pr.raws))}
	for i, raw := range pr.raws {
		in.Resources = append(in.Resources, pr.normalised(raw))
		pr.raws[i] = nil
	}
	pr.raws = nil
	return in
}
