package parity

import (
	"encoding/json"
	"fmt"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts the input to OPA's value form without a JSON round trip.
func toValue(in *Input, withValues bool) (ast.Value, error) {
	res := make([]any, len(in.Resources))
	for i, r := range in.Resources {
		var tags any
		if r.Tags != nil {
			m := make(map[string]any, len(r.Tags))
			for k, v := range r.Tags {
				m[k] = v
			}
			tags = m
		}
		actions := make([]any, len(r.Actions))
		for j, a := range r.Actions {
			actions[j] = a
		}
		values := any(map[string]any{})
		if withValues && r.Values != nil {
			values = r.Values
		}
		res[i] = map[string]any{
			"address": r.Address, "type": r.Type, "provider": r.Provider, "actions": actions,
			"tags": tags, "region": r.Region, "name": r.Name, "values": values,
		}
	}
	overrides := make([]any, len(in.Overrides))
	for i, o := range in.Overrides {
		overrides[i] = o
	}
	m := map[string]any{"source": in.Source, "resources": res, "overrides": overrides}
	if in.Backend != "" {
		m["backend"] = in.Backend
	}
	return ast.InterfaceToValue(m)
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

// taggable lists resource types known to take tags, for configurations that
// do not set them (a plan always shows the attribute).
var taggable = map[string]bool{
	"aws_s3_bucket": true, "aws_kms_key": true, "aws_dynamodb_table": true, "aws_iam_role": true,
	"aws_iam_openid_connect_provider": true, "aws_iam_policy": true,
	"google_storage_bucket": true, "google_kms_crypto_key": true, "google_service_account": false,
	"oci_objectstorage_bucket": true, "oci_kms_vault": true, "oci_kms_key": true, "oci_identity_dynamic_group": true,
	"digitalocean_droplet": true, "digitalocean_kubernetes_cluster": true, "digitalocean_database_cluster": true,
}

// normalise fills tags, region and name from raw values.
func normalise(r *Resource, providerRegion map[string]string) {
	v := r.Values
	switch r.Provider {
	case "aws":
		r.Tags = stringMap(v, "tags_all")
		if r.Tags == nil {
			r.Tags = stringMap(v, "tags")
		}
		if r.Tags == nil && (hasKey(v, "tags_all") || hasKey(v, "tags") || taggable[r.Type]) {
			r.Tags = map[string]string{}
		}
		r.Name = firstString(v, "bucket", "name")
	case "google":
		r.Tags = stringMap(v, "effective_labels")
		if r.Tags == nil {
			r.Tags = stringMap(v, "labels")
		}
		if r.Tags == nil && (hasKey(v, "labels") || taggable[r.Type]) {
			r.Tags = map[string]string{}
		}
		r.Region = strings.ToLower(firstString(v, "location", "region"))
		r.Name = firstString(v, "name")
	case "oci":
		free, defined := stringMap(v, "freeform_tags"), stringMap(v, "defined_tags")
		if free != nil || defined != nil || hasKey(v, "freeform_tags") || hasKey(v, "defined_tags") || taggable[r.Type] {
			r.Tags = map[string]string{}
			for k, x := range defined {
				r.Tags[k] = x
			}
			for k, x := range free {
				r.Tags[k] = x
			}
		}
		r.Name = firstString(v, "name", "display_name")
	case "digitalocean":
		if list, ok := v["tags"].([]any); ok || hasKey(v, "tags") || taggable[r.Type] {
			r.Tags = map[string]string{}
			for _, t := range list {
				s, _ := t.(string)
				k, val, _ := strings.Cut(s, ":")
				r.Tags[k] = val
			}
		}
		r.Name = firstString(v, "name")
	case "builtin":
		if in, ok := v["input"].(map[string]any); ok {
			r.Tags = stringMap(in, "tags")
			if r.Tags == nil {
				r.Tags = map[string]string{}
			}
			r.Region = firstString(in, "region")
			r.Name = firstString(in, "name")
		}
	default:
		r.Name = firstString(v, "name", "bucket")
	}
	if r.Region == "" {
		r.Region = firstString(v, "region")
	}
	if r.Region == "" {
		r.Region = providerRegion[r.Provider]
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func stringMap(m map[string]any, k string) map[string]string {
	raw, ok := m[k].(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(raw))
	for key, v := range raw {
		switch t := v.(type) {
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

// FromPlan normalises a plan (tofu show -json of a saved plan). Resources
// that are only read, left alone or deleted are not checked: the rules are
// about what the plan creates or changes.
func FromPlan(p *tfjson.Plan) *Input {
	in := &Input{Source: "plan"}
	regions := map[string]string{}
	if p.Config != nil {
		for key, pc := range p.Config.ProviderConfigs {
			if pc == nil || strings.Contains(key, ".") {
				continue
			}
			if e, ok := pc.Expressions["region"]; ok && e != nil && e.ExpressionData != nil {
				if s, ok := e.ConstantValue.(string); ok {
					regions[pc.Name] = s
				}
			}
		}
	}
	for _, rc := range p.ResourceChanges {
		if rc == nil || rc.Change == nil || rc.Mode != tfjson.ManagedResourceMode {
			continue
		}
		acts := rc.Change.Actions
		if acts.NoOp() || acts.Read() || acts.Delete() {
			continue
		}
		after, _ := rc.Change.After.(map[string]any)
		r := Resource{Address: rc.Address, Type: rc.Type, Provider: providerOf(rc.Type), Values: after}
		for _, a := range acts {
			r.Actions = append(r.Actions, string(a))
		}
		if r.Values == nil {
			r.Values = map[string]any{}
		}
		normalise(&r, regions)
		in.Resources = append(in.Resources, r)
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
