package parity

// Reading an OpenTofu root module statically, merged as OpenTofu merges it
// (OpenTofu v1.12, internal/configs: parser_config_dir.go, module.go and
// module_merge.go; the rules below were confirmed against the pinned
// binary).
//
// Files. Every entry of the directory that is not a directory and whose
// name ends in .tf, .tf.json, .tofu or .tofu.json, except hidden files
// (".…") and editor files ("…~", "#…#"). X.tf is skipped when X.tofu exists,
// and X.tf.json when X.tofu.json exists, as OpenTofu prefers the .tofu file.
// A file whose stem (the name less that extension) is "override" or ends in
// "_override" is an override file; the rest are primary files. .tf and .tofu
// are HCL native syntax, .tf.json and .tofu.json HCL JSON syntax. Each file
// is at most 8 MiB.
//
// Primary files, in lexical order, are combined. Two backend blocks, two
// cloud blocks or one of each, two default (unaliased) configurations of one
// provider, and two resources with one address are errors, as in OpenTofu.
//
// Override files are then applied one at a time, in lexical order:
//   - a backend block replaces the backend, and a cloud block replaces it
//     too (a cloud block is a backend: "cloud"). One override file with two
//     of them is an error; OpenTofu refuses two backend blocks there too,
//     but lets a cloud block silently beat a backend block in the same
//     file, which FromConfig refuses as well;
//   - a provider block's attributes replace the attributes of the same name
//     of that provider's default configuration, and its default_tags block
//     replaces the primary one (a provider with no primary configuration is
//     created, as OpenTofu does);
//   - a resource block's attributes replace the primary resource's
//     attributes of the same name, whole: an overriding tags or input
//     object is not merged key by key. An override of a resource that no
//     primary file declares is an error, as in OpenTofu.
//
// What is read. The backend type (local when no backend is declared); each
// default provider configuration's region and default_tags.tags; each
// managed resource's type, name and top-level attributes whose values are
// literals: no references and no function calls, in templates either.
// An attribute that is not a literal is unknown here and left to the plan
// check: no rule reports it on the configuration (a tag, name or region that
// the plan knows, or reports as unknown until apply). An override that sets
// an attribute to something that is not a literal makes it unknown. A
// literal null is absent. A resource with a provider argument uses an
// aliased configuration, which is not read: its region and default tags are
// left to the plan check too. Nested blocks of resources are not read; in JSON
// syntax, which has no schema to tell a nested block from an object, a
// nested block other than lifecycle, connection, provisioner and dynamic
// reads as an object attribute. Aliased provider configurations, data
// sources, modules, variables and locals are not read.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// maxConfigFile bounds one configuration file.
const maxConfigFile = 8 << 20

// ConfigError reports a configuration file that does not parse.
type ConfigError struct{ Diags hcl.Diagnostics }

func (e *ConfigError) Error() string { return e.Diags.Error() }

// DuplicateError reports two declarations OpenTofu refuses to combine: two
// backends (a cloud block counts as one) among the primary files or in one
// override file, two default configurations of a provider, or two resources
// with one address.
type DuplicateError struct {
	Block  string // the second declaration, as written: backend "local", cloud, provider "aws", resource "aws_s3_bucket" "state"
	At     string // its file:line
	Prev   string // the first declaration
	PrevAt string // its file:line
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("%s: %s conflicts with %s at %s: OpenTofu refuses both in one configuration; remove one of them", e.At, e.Block, e.Prev, e.PrevAt)
}

// OverrideError reports an override file that overrides a resource no
// primary file declares, which OpenTofu refuses.
type OverrideError struct {
	Block string // resource "type" "name"
	At    string // file:line
}

func (e *OverrideError) Error() string {
	return fmt.Sprintf("%s: %s overrides nothing: no primary configuration file declares it, and OpenTofu refuses such an override; declare it in a primary file or remove the override", e.At, e.Block)
}

// ConfigFiles lists the configuration files OpenTofu reads in dir, by name,
// each list in lexical order: primary files, then override files.
func ConfigFiles(dir string) (primary, override []string, err error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, nil, err
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name()] = true
	}
	for _, e := range entries {
		name := e.Name()
		ext := configExt(name)
		if e.IsDir() || ext == "" || ignoredFile(name) {
			continue
		}
		stem := strings.TrimSuffix(name, ext)
		if ext == ".tf" && present[stem+".tofu"] || ext == ".tf.json" && present[stem+".tofu.json"] {
			continue
		}
		if stem == "override" || strings.HasSuffix(stem, "_override") {
			override = append(override, name)
		} else {
			primary = append(primary, name)
		}
	}
	return primary, override, nil
}

func configExt(name string) string {
	for _, ext := range []string{".tf", ".tf.json", ".tofu", ".tofu.json"} {
		if strings.HasSuffix(name, ext) {
			return ext
		}
	}
	return ""
}

// ignoredFile is OpenTofu's configs.IsIgnoredFile.
func ignoredFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#")
}

// attr is one attribute: its value when it is a literal.
type attr struct {
	value any
	known bool
}

// decl is a provider or resource block.
type decl struct {
	name  string // "aws", or "aws_s3_bucket.state"
	block string // as written: provider "aws", resource "aws_s3_bucket" "state"
	typ   string // the resource type
	at    string
	attrs map[string]attr
}

// merge applies an override block: its attributes replace base's whole.
func (d *decl) merge(o *decl) {
	for k, v := range o.attrs {
		d.attrs[k] = v
	}
}

type backendDecl struct{ typ, block, at string }

type fileDecls struct {
	backends  []backendDecl
	providers []*decl
	resources []*decl
}

var (
	fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "terraform"},
		{Type: "provider", LabelNames: []string{"name"}},
		{Type: "resource", LabelNames: []string{"type", "name"}},
	}}
	terraformSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "backend", LabelNames: []string{"type"}},
		{Type: "cloud"},
	}}
	providerSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "default_tags"}}}
	// resourceSchema names the meta-argument blocks of a resource, so that
	// JSON syntax does not read them as attributes.
	resourceSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "lifecycle"}, {Type: "connection"},
		{Type: "provisioner", LabelNames: []string{"type"}},
		{Type: "dynamic", LabelNames: []string{"type"}},
	}}
	// staticCtx has no variables and no functions: only literals evaluate,
	// and JSON strings are read as templates, as OpenTofu reads them.
	staticCtx = &hcl.EvalContext{}
)

func pos(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// readConfigFile parses one file and collects what FromConfig reads.
func readConfigFile(parser *hclparse.Parser, dir, name string) (*fileDecls, error) {
	src, err := readBounded(filepath.Join(dir, name), name, maxConfigFile)
	if err != nil {
		return nil, err
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(name, ".json") {
		f, diags = parser.ParseJSON(src, name)
	} else {
		f, diags = parser.ParseHCL(src, name)
	}
	if diags.HasErrors() {
		return nil, &ConfigError{diags}
	}
	content, _, diags := f.Body.PartialContent(fileSchema)
	if diags.HasErrors() {
		return nil, &ConfigError{diags}
	}
	out := &fileDecls{}
	for _, b := range content.Blocks {
		switch b.Type {
		case "terraform":
			tc, _, diags := b.Body.PartialContent(terraformSchema)
			if diags.HasErrors() {
				return nil, &ConfigError{diags}
			}
			for _, nb := range tc.Blocks {
				bd := backendDecl{typ: "cloud", block: "cloud", at: pos(nb.DefRange)}
				if nb.Type == "backend" {
					if err := identifier(nb, "backend type", nb.Labels[0]); err != nil {
						return nil, err
					}
					bd.typ, bd.block = nb.Labels[0], fmt.Sprintf("backend %q", nb.Labels[0])
				}
				out.backends = append(out.backends, bd)
			}
		case "provider":
			if err := identifier(b, "provider name", b.Labels[0]); err != nil {
				return nil, err
			}
			attrs, nested, diags := bodyAttrs(b.Body, providerSchema)
			if diags.HasErrors() {
				return nil, &ConfigError{diags}
			}
			if _, aliased := attrs["alias"]; aliased {
				continue
			}
			for _, nb := range nested { // default_tags
				dt, _, diags := bodyAttrs(nb.Body, nil)
				if diags.HasErrors() {
					return nil, &ConfigError{diags}
				}
				tags, ok := dt["tags"]
				if !ok {
					tags = attr{known: true}
				}
				attrs["default_tags"] = tags
			}
			out.providers = append(out.providers, &decl{name: b.Labels[0], block: fmt.Sprintf("provider %q", b.Labels[0]), at: pos(b.DefRange), attrs: attrs})
		case "resource":
			for i, what := range []string{"resource type", "resource name"} {
				if err := identifier(b, what, b.Labels[i]); err != nil {
					return nil, err
				}
			}
			attrs, _, diags := bodyAttrs(b.Body, resourceSchema)
			if diags.HasErrors() {
				return nil, &ConfigError{diags}
			}
			out.resources = append(out.resources, &decl{
				name: b.Labels[0] + "." + b.Labels[1], block: fmt.Sprintf("resource %q %q", b.Labels[0], b.Labels[1]),
				typ: b.Labels[0], at: pos(b.DefRange), attrs: attrs,
			})
		}
	}
	return out, nil
}

// identifier refuses a block label that is not an identifier, as OpenTofu
// does; HCL and JSON can both spell one (an empty string, say).
func identifier(b *hcl.Block, what, label string) error {
	if hclsyntax.ValidIdentifier(label) {
		return nil
	}
	return &ConfigError{hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid " + what,
		Detail: fmt.Sprintf("%s %q is not a valid identifier", what, label), Subject: b.DefRange.Ptr()}}}
}

// bodyAttrs reads a block body's attributes and its nested blocks of the
// types in nested. Native syntax tells attributes from blocks itself; JSON
// syntax needs the schema.
func bodyAttrs(body hcl.Body, nested *hcl.BodySchema) (map[string]attr, hcl.Blocks, hcl.Diagnostics) {
	out := map[string]attr{}
	if sb, ok := body.(*hclsyntax.Body); ok {
		for name, a := range sb.Attributes {
			out[name] = staticValue(a.Expr)
		}
		var blocks hcl.Blocks
		if nested != nil {
			for _, b := range sb.Blocks {
				for _, s := range nested.Blocks {
					if b.Type == s.Type {
						blocks = append(blocks, b.AsHCLBlock())
					}
				}
			}
		}
		return out, blocks, nil
	}
	if nested == nil {
		nested = &hcl.BodySchema{}
	}
	content, remain, diags := body.PartialContent(nested)
	attrs, more := remain.JustAttributes()
	diags = append(diags, more...)
	for name, a := range attrs {
		out[name] = staticValue(a.Expr)
	}
	return out, content.Blocks, diags
}

// staticValue evaluates an expression that needs no context.
func staticValue(expr hcl.Expression) attr {
	v, diags := expr.Value(staticCtx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return attr{}
	}
	if v.IsNull() {
		return attr{known: true}
	}
	g, ok := ctyToGo(v)
	return attr{value: g, known: ok}
}

func ctyToGo(v cty.Value) (any, bool) {
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, false
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, false
	}
	return g, true
}

// FromConfig reads the configuration in dir statically, merged as OpenTofu
// merges it: primary files, then override files (see the comment at the top
// of config.go for the rules and for what is read). Expressions that refer to
// anything are unknown and skipped; literal values are checked. Errors are
// *ConfigError (syntax), *DuplicateError, *OverrideError and *TooLargeError,
// each naming the file and line.
func FromConfig(dir string) (*Input, error) {
	primary, override, err := ConfigFiles(dir)
	if err != nil {
		return nil, err
	}
	parser := hclparse.NewParser()
	// With no backend block the state is local until bootstrap; the
	// backend gate (gate 3) judges that, so the parity rule sees none.
	in := &Input{Source: "config"}
	var backend *backendDecl
	providerDecls := map[string]*decl{}
	resources := map[string]*decl{}
	var order []*decl
	for _, name := range primary {
		fd, err := readConfigFile(parser, dir, name)
		if err != nil {
			return nil, err
		}
		for i := range fd.backends {
			b := &fd.backends[i]
			if backend != nil {
				return nil, &DuplicateError{Block: b.block, At: b.at, Prev: backend.block, PrevAt: backend.at}
			}
			backend = b
		}
		for _, p := range fd.providers {
			if prev, ok := providerDecls[p.name]; ok {
				return nil, &DuplicateError{Block: p.block, At: p.at, Prev: prev.block, PrevAt: prev.at}
			}
			providerDecls[p.name] = p
		}
		for _, r := range fd.resources {
			if prev, ok := resources[r.name]; ok {
				return nil, &DuplicateError{Block: r.block, At: r.at, Prev: prev.block, PrevAt: prev.at}
			}
			resources[r.name] = r
			order = append(order, r)
		}
	}
	for _, name := range override {
		fd, err := readConfigFile(parser, dir, name)
		if err != nil {
			return nil, err
		}
		switch len(fd.backends) {
		case 0:
		case 1:
			backend = &fd.backends[0]
		default:
			b, prev := fd.backends[1], fd.backends[0]
			return nil, &DuplicateError{Block: b.block, At: b.at, Prev: prev.block, PrevAt: prev.at}
		}
		for _, p := range fd.providers {
			if prev, ok := providerDecls[p.name]; ok {
				prev.merge(p)
			} else {
				providerDecls[p.name] = p
			}
		}
		for _, r := range fd.resources {
			prev, ok := resources[r.name]
			if !ok {
				return nil, &OverrideError{Block: r.block, At: r.at}
			}
			prev.merge(r)
		}
		in.Overrides = append(in.Overrides, name)
	}
	if backend != nil {
		in.Backend = backend.typ
	}

	if backend != nil {
		in.BackendFile, in.BackendLine = splitPos(backend.at)
	}
	providers := map[string]providerInfo{}
	for name, p := range providerDecls {
		var info providerInfo
		if a, ok := p.attrs["region"]; ok {
			if s, isStr := a.value.(string); a.known && isStr {
				info.region = s
			} else if !a.known {
				info.regionUnknown = true
			}
		}
		if a, ok := p.attrs["default_tags"]; ok {
			if a.known {
				info.defaultTags = stringMap(map[string]any{"tags": a.value}, "tags")
			} else {
				info.defaultTagsUnknown = true
			}
		}
		providers[name] = info
	}
	for _, d := range order {
		values := map[string]any{}
		unknown := map[string]any{}
		for k, a := range d.attrs {
			if a.known {
				values[k] = a.value
			} else {
				unknown[k] = true
			}
		}
		r := Resource{Address: d.name, Type: d.typ, Provider: providerOf(d.typ), Values: values, Actions: []string{"create"}}
		r.File, r.Line = splitPos(d.at)
		prov := providers[r.Provider]
		if _, ok := d.attrs["provider"]; ok {
			// An aliased provider configuration, which is not read here:
			// its region and default tags are left to the plan check.
			prov = providerInfo{regionUnknown: true, defaultTagsUnknown: true}
		}
		normalise(&r, values, unknownOf(unknown, false), prov)
		in.Resources = append(in.Resources, r)
	}
	return in, nil
}

// splitPos splits file:line.
func splitPos(at string) (string, int) {
	i := strings.LastIndexByte(at, ':')
	if i < 0 {
		return at, 0
	}
	n, _ := strconv.Atoi(at[i+1:])
	return at[:i], n
}
