package parity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/open-policy-agent/opa/v1/ast"
)

// resourceValue converts a resource to OPA's value form without a JSON round
// trip.
func resourceValue(r *Resource, withValues bool) *ast.Term {
	var tags *ast.Term
	if r.Tags != nil {
		kv := make([][2]*ast.Term, 0, len(r.Tags))
		for k, v := range r.Tags {
			kv = append(kv, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
		}
		tags = ast.ObjectTerm(kv...)
	} else {
		tags = ast.NullTerm()
	}
	actions := make([]*ast.Term, len(r.Actions))
	for j, a := range r.Actions {
		actions[j] = ast.StringTerm(a)
	}
	unknown := make([][2]*ast.Term, len(r.Unknown))
	for j, u := range r.Unknown {
		unknown[j] = [2]*ast.Term{ast.StringTerm(u), ast.BooleanTerm(true)}
	}
	values := ast.ObjectTerm()
	if withValues && r.Values != nil {
		if v, err := ast.InterfaceToValue(r.Values); err == nil {
			values = ast.NewTerm(v)
		}
	}
	return ast.ObjectTerm(
		[2]*ast.Term{ast.StringTerm("address"), ast.StringTerm(r.Address)},
		[2]*ast.Term{ast.StringTerm("type"), ast.StringTerm(r.Type)},
		[2]*ast.Term{ast.StringTerm("provider"), ast.StringTerm(r.Provider)},
		[2]*ast.Term{ast.StringTerm("actions"), ast.ArrayTerm(actions...)},
		[2]*ast.Term{ast.StringTerm("tags"), tags},
		[2]*ast.Term{ast.StringTerm("region"), ast.StringTerm(r.Region)},
		[2]*ast.Term{ast.StringTerm("name"), ast.StringTerm(r.Name)},
		[2]*ast.Term{ast.StringTerm("named"), ast.BooleanTerm(r.Named)},
		[2]*ast.Term{ast.StringTerm("unknown"), ast.ObjectTerm(unknown...)},
		[2]*ast.Term{ast.StringTerm("values"), values},
	)
}

// inputValue is the input of one evaluation: some resources, and for the
// first batch of a configuration, the backend and override files.
func inputValue(in *Input, res []Resource, first, withValues bool) ast.Value {
	terms := make([]*ast.Term, len(res))
	for i := range res {
		terms[i] = resourceValue(&res[i], withValues)
	}
	overrides := make([]*ast.Term, len(in.Overrides))
	for i, o := range in.Overrides {
		overrides[i] = ast.StringTerm(o)
	}
	kv := [][2]*ast.Term{
		{ast.StringTerm("source"), ast.StringTerm(in.Source)},
		{ast.StringTerm("resources"), ast.ArrayTerm(terms...)},
		{ast.StringTerm("overrides"), ast.ArrayTerm(overrides...)},
	}
	if first && in.Backend != "" {
		kv = append(kv, [2]*ast.Term{ast.StringTerm("backend"), ast.StringTerm(in.Backend)})
	}
	return ast.NewObject(kv...)
}

// providerOf names the provider of a resource type.
func providerOf(typ string) string {
	if typ == "terraform_data" || typ == "null_resource" {
		return "builtin"
	}
	if i := strings.IndexByte(typ, '_'); i > 0 {
		return typ[:i]
	}
	return typ
}

// defaultNames are the attributes that name a resource of a type the name
// table does not list, first present first.
func defaultNames(provider string) []string {
	if a, ok := defaultNameAttributes[provider]; ok {
		return a
	}
	return []string{defaultNameAttribute}
}

// unknowns tells which parts of a resource are unknown until apply: the
// after_unknown of a plan, or the non-literal attributes of a configuration.
type unknowns struct {
	m   map[string]any
	all bool
}

func unknownOf(m map[string]any, all bool) unknowns { return unknowns{m, all} }

// at returns the marker at path: true, an object or list of markers, or nil.
func (u unknowns) at(path ...string) any {
	if u.all {
		return true
	}
	var cur any = u.m
	for _, p := range path {
		switch c := cur.(type) {
		case bool:
			return c
		case map[string]any:
			cur = c[p]
		default:
			return nil
		}
	}
	return cur
}

// is reports whether the value at path is wholly unknown.
func (u unknowns) is(path ...string) bool {
	b, _ := u.at(path...).(bool)
	return b
}

// partly reports whether anything at or under path is unknown.
func (u unknowns) partly(path ...string) bool {
	var some func(v any) bool
	some = func(v any) bool {
		switch t := v.(type) {
		case bool:
			return t
		case map[string]any:
			for _, x := range t {
				if some(x) {
					return true
				}
			}
		case []any:
			for _, x := range t {
				if some(x) {
					return true
				}
			}
		}
		return false
	}
	return some(u.at(path...))
}

// keys lists the keys of the object at path whose values are unknown.
func (u unknowns) keys(path ...string) []string {
	m, _ := u.at(path...).(map[string]any)
	var out []string
	for k, v := range m {
		if b, _ := v.(bool); b {
			out = append(out, k)
		}
	}
	return out
}

// normalise fills tags, region, name and the unknown markers from the
// attributes v, what is unknown of them, and the provider configuration.
func normalise(r *Resource, v map[string]any, u unknowns, prov providerInfo) {
	if v == nil {
		v = map[string]any{}
	}
	unknown := map[string]bool{}
	switch r.Provider {
	case "aws":
		r.Tags = mergedTags(v, u, "tags_all", "tags", taggable[r.Type], prov, unknown)
	case "google":
		r.Tags = mergedTags(v, u, "effective_labels", "labels", taggable[r.Type], prov, unknown)
	case "oci":
		free, defined := stringMap(v, "freeform_tags"), stringMap(v, "defined_tags")
		if free != nil || defined != nil || hasKey(v, "freeform_tags") || hasKey(v, "defined_tags") ||
			u.at("freeform_tags") != nil || u.at("defined_tags") != nil || taggable[r.Type] {
			r.Tags = map[string]string{}
			for k, x := range defined {
				r.Tags[k] = x
			}
			for k, x := range free {
				r.Tags[k] = x
			}
			if u.is("freeform_tags") || u.is("defined_tags") {
				unknown["tags"] = true
			}
			for _, k := range u.keys("freeform_tags") {
				unknown["tags."+k] = true
			}
			if dm, ok := u.at("defined_tags").(map[string]any); ok {
				for ns := range dm {
					if u.is("defined_tags", ns) {
						unknown["tags"] = true
					}
					for _, k := range u.keys("defined_tags", ns) {
						unknown["tags."+ns+"."+k] = true
					}
				}
			}
		}
	case "digitalocean":
		if list, ok := v["tags"].([]any); ok || hasKey(v, "tags") || u.at("tags") != nil || taggable[r.Type] {
			r.Tags = map[string]string{}
			for _, t := range list {
				s, ok := t.(string)
				if !ok {
					continue
				}
				k, val, _ := strings.Cut(s, ":")
				r.Tags[k] = val
			}
			// An unknown element could be any key.
			if u.partly("tags") {
				unknown["tags"] = true
			}
		}
	case "builtin":
		in, _ := v["input"].(map[string]any)
		if in == nil && !u.partly("input") {
			break
		}
		if in == nil {
			in = map[string]any{}
		}
		r.Tags = stringMap(in, "tags")
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		if u.is("input") || u.is("input", "tags") {
			unknown["tags"] = true
		}
		for _, k := range u.keys("input", "tags") {
			unknown["tags."+k] = true
		}
		r.Region = firstString(in, "region")
		if r.Region == "" && (u.is("input") || u.is("input", "region")) {
			unknown["region"] = true
		}
		r.Named = true
		r.Name = firstString(in, "name")
		if r.Name == "" && (u.is("input") || u.is("input", "name")) {
			unknown["name"] = true
		}
	}
	if r.Provider != "builtin" {
		regionKeys := []string{"region"}
		if r.Provider == "google" {
			regionKeys = []string{"location", "region"}
		}
		// The resource's own region, else its provider's. A region
		// attribute unknown at plan time is computed by the provider,
		// which puts the resource in its own region.
		regionUnknown := false
		for _, k := range regionKeys {
			if s, ok := v[k].(string); ok && s != "" {
				r.Region = s
				break
			}
			regionUnknown = regionUnknown || u.is(k)
		}
		if r.Region == "" {
			r.Region = prov.region
			if prov.regionUnknown || r.Region == "" && regionUnknown && r.Provider != "aws" {
				unknown["region"] = true
			}
		}
		if r.Provider == "google" {
			r.Region = strings.ToLower(r.Region)
		}
		nameOf(r, v, u, unknown)
	}
	r.Unknown = r.Unknown[:0]
	for k := range unknown {
		r.Unknown = append(r.Unknown, k)
	}
	sort.Strings(r.Unknown)
}

// nameOf fills a cloud resource's name from the name attribute table.
func nameOf(r *Resource, v map[string]any, u unknowns, unknown map[string]bool) {
	attrs := defaultNames(r.Provider)
	listed := false
	trim := ""
	if a, ok := NameAttributes[r.Type]; ok {
		if a.Attribute == "" {
			return
		}
		attrs, listed, trim = []string{a.Attribute}, true, a.TrimPrefix
	}
	for _, a := range attrs {
		if a == "tags.Name" {
			r.Named = true
			if s, ok := r.Tags["Name"]; ok {
				r.Name = s
			} else if unknown["tags"] || unknown["tags.Name"] {
				unknown["name"] = true
			}
			return
		}
		if s, ok := v[a].(string); ok {
			r.Named, r.Name = true, strings.TrimPrefix(s, trim)
			return
		}
		if u.is(a) {
			r.Named = true
			unknown["name"] = true
			return
		}
		if hasKey(v, a) {
			r.Named = true
			return
		}
	}
	r.Named = listed
}

// mergedTags reads AWS-style tags: the provider-merged attribute (all) when
// it is known, else the provider's default tags merged with the resource's
// own, with their unknown parts marked.
func mergedTags(v map[string]any, u unknowns, all, own string, taggable bool, prov providerInfo, unknown map[string]bool) map[string]string {
	if _, ok := v[all].(map[string]any); ok {
		for _, k := range u.keys(all) {
			unknown["tags."+k] = true
		}
		return stringMap(v, all)
	}
	// Default tags apply only to a type that takes tags.
	if !(u.at(all) != nil || u.at(own) != nil || hasKey(v, all) || hasKey(v, own) || taggable) {
		return nil
	}
	tags := map[string]string{}
	for k, x := range prov.defaultTags {
		tags[k] = x
	}
	for k, x := range stringMap(v, own) {
		tags[k] = x
	}
	for _, k := range u.keys(own) {
		delete(tags, k)
		unknown["tags."+k] = true
	}
	if u.is(own) || prov.defaultTagsUnknown {
		unknown["tags"] = true
	}
	return tags
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// stringMap reads a map of tags; a null value is an absent tag.
func stringMap(m map[string]any, k string) map[string]string {
	raw, ok := m[k].(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(raw))
	for key, v := range raw {
		switch t := v.(type) {
		case nil:
		case string:
			out[key] = t
		case map[string]any: // OCI defined tags: namespace → key → value
			for k2, v2 := range t {
				if s, ok := v2.(string); ok {
					out[key+"."+k2] = s
				}
			}
		default:
			out[key] = fmt.Sprint(t)
		}
	}
	return out
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// FromPlan normalises a plan parsed with terraform-json, as ReadPlan does,
// with every resource's values. A plan that cannot be re-read gives an
// Input that Check refuses with the error.
func FromPlan(p *tfjson.Plan) *Input {
	data, err := json.Marshal(p)
	if err != nil {
		return &Input{Source: "plan", err: err}
	}
	in, err := ReadPlan(bytes.NewReader(data), func(string) bool { return true })
	if err != nil {
		return &Input{Source: "plan", err: err}
	}
	return in
}

// ParsePlan reads plan JSON with terraform-json.
func ParsePlan(data []byte) (*tfjson.Plan, error) {
	var p tfjson.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("not plan JSON: %v", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("not plan JSON: %v", err)
	}
	return &p, nil
}
