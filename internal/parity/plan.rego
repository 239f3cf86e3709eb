# Normalisation of raw plan JSON (`tofu show -json PLANFILE`) for the
# built-in rules, for conftest and opa eval: it computes `resources` as
# groundzero's Go reader does (plan.go and normalize.go), so the rules in
# parity.rego give the same findings. groundzero policy export writes it.
package groundzero.parity

import rego.v1

# Managed resources whose actions create or update something.
plan_changes := [rc |
	some rc in input.resource_changes
	rc.mode == "managed"
	some a in rc.change.actions
	a in {"create", "update"}
]

resources := [plan_resource(rc) | some rc in plan_changes]

# Provider configurations are resolved once per configuration key.
plan_infos := {concat("|", [key, provider]): plan_provider_info(key, provider) |
	some rc in plan_changes
	provider := plan_provider_of(rc.type)
	key := plan_provider_key(rc, provider)
}

plan_resource(rc) := r if {
	after := plan_after(rc)
	u := plan_after_unknown(rc)
	provider := plan_provider_of(rc.type)
	pc := plan_infos[concat("|", [plan_provider_key(rc, provider), provider])]
	n := plan_normalise(provider, rc.type, after, u, pc)
	r := {
		"address": rc.address, "type": rc.type, "provider": provider, "actions": rc.change.actions,
		"tags": n.tags, "region": n.region, "name": n.name, "named": n.named,
		"unknown": {x: true | some x in n.unknown},
	}
}

plan_after(rc) := a if {
	a := rc.change.after
	is_object(a)
} else := {}

plan_after_unknown(rc) := true if rc.change.after_unknown == true

else := u if {
	u := rc.change.after_unknown
	is_object(u)
} else := {}

plan_provider_of(t) := "builtin" if t in {"terraform_data", "null_resource"}

else := p if {
	i := indexof(t, "_")
	i > 0
	p := substring(t, 0, i)
} else := t

# --- unknown markers (after_unknown) ---

# plan_at is the marker at path (one or two keys): the first boolean on the
# way down, else what is at path (null when a step is not an object).
plan_at(u, path) := u if is_boolean(u)

else := null if not is_object(u)

else := object.get(u, path[0], null) if count(path) == 1

else := u[path[0]] if is_boolean(u[path[0]])

else := object.get(u[path[0]], path[1], null) if is_object(u[path[0]])

else := null

plan_is(u, path) if plan_at(u, path) == true

plan_keys(u, path) := {k |
	m := plan_at(u, path)
	is_object(m)
	some k, v in m
	v == true
}

plan_partly(u, path) if {
	walk(plan_at(u, path), [_, v])
	v == true
}

plan_has(m, k) if k in object.keys(m)

# --- string maps of tags: null is absent, OCI defined tags are flattened ---

plan_string_map(m) := object.union_n([
	{k: v | some k, v in m; is_string(v)},
	{concat(".", [k, k2]): v2 | some k, inner in m; is_object(inner); some k2, v2 in inner; is_string(v2)},
	{k: sprintf("%v", [v]) | some k, v in m; not is_string(v); not is_object(v); v != null},
]) if is_object(m)

else := null

plan_first_string(m, keys) := s if {
	found := [x | some k in keys; x := object.get(m, k, null); is_string(x); x != ""]
	count(found) > 0
	s := found[0]
} else := ""

# --- configuration: modules, provider configurations, expressions ---

plan_static_module(rc) := regex.replace(object.get(rc, "module_address", ""), `\[(?:"(?:[^"\\]|\\.)*"|[0-9]+)\]`, "")

plan_module_node(p) := input.configuration.root_module if p == ""

else := object.get(input.configuration.root_module, [x |
	some i, part in split(p, ".")
	i % 2 == 1
	some x in ["module_calls", part, "module"]
], null)

plan_module_paths := {plan_static_module(rc) | some rc in plan_changes}

# One object, computed once: a partial rule would be evaluated anew for
# each key looked up.
plan_config_keys := {k: cr.provider_config_key |
	some p in plan_module_paths
	node := plan_module_node(p)
	is_object(node)
	some cr in object.get(node, "resources", [])
	cr.mode == "managed"
	k := concat("|", [p, cr.address])
}

plan_provider_key(rc, provider) := k if {
	k := plan_config_keys[concat("|", [plan_static_module(rc), concat(".", [rc.type, rc.name])])]
} else := plan_local_key(plan_static_module(rc), provider)

plan_local_key(mod, provider) := k if {
	local := plan_local_name(provider)
	k := plan_join_key(mod, local)
}

plan_local_name(provider) := "terraform" if provider == "builtin"

else := provider

plan_join_key(mod, local) := local if mod == ""

else := concat(":", [mod, local])

# The configuration key, then the default configuration of the provider in
# each ancestor module, up to the root.
plan_candidates(key) := [key] if not contains(key, ":")

else := array.concat([key], [c |
	parts := split(key, ":")
	segs := split(parts[0], ".")
	local := split(parts[1], ".")[0]
	levels := count(segs) / 2
	some j in numbers.range(levels - 1, 0)
	c := plan_join_key(concat(".", array.slice(segs, 0, 2 * j)), local)
])

plan_provider_config(key) := pcs[0] if {
	all := object.get(input, ["configuration", "provider_config"], {})
	pcs := [pc | some c in plan_candidates(key); pc := all[c]]
	count(pcs) > 0
}

plan_provider_info(key, provider) := info if {
	pc := plan_provider_config(key)
	mod := object.get(pc, "module_address", "")
	exprs := object.get(pc, "expressions", {})
	region := plan_resolve(object.get(exprs, "region", null), mod)
	tags := plan_resolve(plan_default_tags_expr(provider, exprs), mod)
	info := {
		"region": plan_region_value(region),
		"region_unknown": region.state == "unknown",
		"default_tags": plan_default_tags_value(tags),
		"default_tags_unknown": tags.state == "unknown",
	}
} else := {"region": "", "region_unknown": false, "default_tags": null, "default_tags_unknown": false}

plan_region_value(res) := res.value if {
	res.state == "known"
	is_string(res.value)
} else := ""

plan_default_tags_value(res) := plan_string_map(res.value) if res.state == "known"

else := null

plan_default_tags_expr(provider, exprs) := b.tags if {
	provider == "aws"
	blocks := exprs.default_tags
	is_array(blocks)
	count(blocks) > 0
	b := blocks[0]
	is_object(b)
} else := exprs.default_labels if provider == "google"

else := null

# plan_resolve evaluates an expression of the module at mod: a constant, or
# exactly one variable, followed up through at most 8 module calls. Rego has
# no recursion, so the steps are applied a fixed number of times.
plan_resolve(expr, mod) := r if {
	s0 := {"done": false, "expr": expr, "mod": mod, "depth": 0}
	s1 := plan_step(s0)
	s2 := plan_step(s1)
	s3 := plan_step(s2)
	s4 := plan_step(s3)
	s5 := plan_step(s4)
	s6 := plan_step(s5)
	s7 := plan_step(s6)
	s8 := plan_step(s7)
	s9 := plan_step(s8)
	s10 := plan_step(s9)
	r := plan_finish(s10)
}

plan_finish(s) := s if s.done

else := {"done": true, "state": "unknown"}

plan_done(state, value) := {"done": true, "state": state, "value": value}

plan_known(v) := plan_done("absent", null) if v == null

else := plan_done("known", v)

plan_step(s) := s if s.done

else := plan_done("absent", null) if not is_object(s.expr)

else := plan_known(s.expr.constant_value) if plan_has(s.expr, "constant_value")

else := plan_var_step(s, substring(s.expr.references[0], 4, -1)) if {
	count(s.expr.references) == 1
	ref := s.expr.references[0]
	startswith(ref, "var.")
	not contains(substring(ref, 4, -1), ".")
	not contains(substring(ref, 4, -1), "[")
} else := plan_done("unknown", null)

plan_var_step(s, name) := plan_done("unknown", null) if s.depth >= 8

else := plan_known(input.variables[name].value) if {
	s.mod == ""
	plan_has(object.get(input, "variables", {}), name)
} else := plan_done("unknown", null) if s.mod == ""

else := next if {
	segs := split(s.mod, ".")
	n := count(segs)
	parent := concat(".", array.slice(segs, 0, n - 2))
	call := segs[n - 1]
	mc := plan_module_node(parent).module_calls[call]
	next := plan_call_step(s, mc, parent, name)
} else := plan_done("unknown", null)

plan_call_step(s, mc, parent, name) := {"done": false, "expr": mc.expressions[name], "mod": parent, "depth": s.depth + 1} if {
	plan_has(object.get(mc, "expressions", {}), name)
} else := plan_known(mc.module.variables[name]["default"]) if {
	plan_has(mc.module.variables[name], "default")
} else := plan_done("unknown", null)

# --- normalisation per provider (normalize.go) ---

plan_normalise(provider, type, after, u, pc) := n if {
	provider == "builtin"
	n := plan_builtin(after, u)
} else := n if {
	t := plan_tags(provider, type, after, u, pc)
	rg := plan_region(provider, after, u, pc)
	nm := plan_name(provider, type, after, u, t)
	n := {
		"tags": t.tags, "region": rg.region, "name": nm.name, "named": nm.named,
		"unknown": (t.unknown | rg.unknown) | nm.unknown,
	}
}

plan_taggable(type) if type in tables.taggable

plan_tags(provider, type, after, u, pc) := plan_merged(after, u, "tags_all", "tags", type, pc) if provider == "aws"

else := plan_merged(after, u, "effective_labels", "labels", type, pc) if provider == "google"

else := plan_oci_tags(after, u, type) if provider == "oci"

else := plan_do_tags(after, u, type) if provider == "digitalocean"

else := {"tags": null, "unknown": set()}

plan_merged(after, u, all, own, type, pc) := {"tags": plan_string_map(after[all]), "unknown": {concat(".", ["tags", k]) | some k in plan_keys(u, [all])}} if {
	is_object(after[all])
} else := {"tags": tags, "unknown": unknown} if {
	plan_tag_attr(after, u, all, own, type, pc)
	own_tags := object.get({"t": plan_string_map(object.get(after, own, null))}, "t", {})
	unknown_keys := plan_keys(u, [own])
	tags := object.remove(object.union(plan_or_empty(pc.default_tags), plan_or_empty(own_tags)), unknown_keys)
	unknown := {concat(".", ["tags", k]) | some k in unknown_keys} | plan_whole_tags(u, own, pc)
} else := {"tags": null, "unknown": set()}

plan_or_empty(m) := m if is_object(m)

else := {}

plan_whole_tags(u, own, pc) := {"tags"} if {
	plan_is(u, [own])
} else := {"tags"} if {
	pc.default_tags_unknown
} else := set()

plan_tag_attr(after, u, all, own, type, pc) if plan_at(u, [all]) != null

plan_tag_attr(after, u, all, own, type, pc) if plan_at(u, [own]) != null

plan_tag_attr(after, u, all, own, type, pc) if plan_has(after, all)

plan_tag_attr(after, u, all, own, type, pc) if plan_has(after, own)

plan_tag_attr(after, u, all, own, type, pc) if plan_taggable(type)

plan_oci_tags(after, u, type) := {"tags": tags, "unknown": unknown} if {
	plan_oci_tagged(after, u, type)
	defined := plan_or_empty(plan_string_map(object.get(after, "defined_tags", null)))
	free := plan_or_empty(plan_string_map(object.get(after, "freeform_tags", null)))
	tags := object.union(defined, free)
	whole := {"tags" | plan_is(u, ["freeform_tags"])} | {"tags" | plan_is(u, ["defined_tags"])}
	nsw := {"tags" | m := plan_at(u, ["defined_tags"]); is_object(m); some ns, _ in m; plan_is(u, ["defined_tags", ns])}
	freek := {concat(".", ["tags", k]) | some k in plan_keys(u, ["freeform_tags"])}
	definedk := {concat(".", ["tags", ns, k]) |
		m := plan_at(u, ["defined_tags"])
		is_object(m)
		some ns, _ in m
		some k in plan_keys(u, ["defined_tags", ns])
	}
	unknown := ((whole | nsw) | freek) | definedk
} else := {"tags": null, "unknown": set()}

plan_oci_tagged(after, u, type) if is_object(object.get(after, "freeform_tags", null))

plan_oci_tagged(after, u, type) if is_object(object.get(after, "defined_tags", null))

plan_oci_tagged(after, u, type) if plan_has(after, "freeform_tags")

plan_oci_tagged(after, u, type) if plan_has(after, "defined_tags")

plan_oci_tagged(after, u, type) if plan_at(u, ["freeform_tags"]) != null

plan_oci_tagged(after, u, type) if plan_at(u, ["defined_tags"]) != null

plan_oci_tagged(after, u, type) if plan_taggable(type)

plan_do_tags(after, u, type) := {"tags": tags, "unknown": unknown} if {
	plan_do_tagged(after, u, type)
	list := object.get(after, "tags", [])
	tags := {k: v |
		is_array(list)
		some t in list
		is_string(t)
		k := plan_before_colon(t)
		v := plan_after_colon(t)
	}
	unknown := {"tags" | plan_partly(u, ["tags"])}
} else := {"tags": null, "unknown": set()}

plan_do_tagged(after, u, type) if is_array(object.get(after, "tags", null))

plan_do_tagged(after, u, type) if plan_has(after, "tags")

plan_do_tagged(after, u, type) if plan_at(u, ["tags"]) != null

plan_do_tagged(after, u, type) if plan_taggable(type)

plan_before_colon(s) := substring(s, 0, indexof(s, ":")) if contains(s, ":")

else := s

plan_after_colon(s) := substring(s, indexof(s, ":") + 1, -1) if contains(s, ":")

else := ""

plan_builtin(after, u) := n if {
	not is_object(object.get(after, "input", null))
	not plan_partly(u, ["input"])
	n := {"tags": null, "region": "", "name": "", "named": false, "unknown": set()}
} else := n if {
	inp := plan_or_empty(object.get(after, "input", null))
	tags := plan_or_empty(plan_string_map(object.get(inp, "tags", null)))
	region := plan_first_string(inp, ["region"])
	name := plan_first_string(inp, ["name"])
	whole := {"tags" | plan_is(u, ["input"])} | {"tags" | plan_is(u, ["input", "tags"])}
	keys := {concat(".", ["tags", k]) | some k in plan_keys(u, ["input", "tags"])}
	ru := {"region" | region == ""; plan_is(u, ["input"])} | {"region" | region == ""; plan_is(u, ["input", "region"])}
	nu := {"name" | name == ""; plan_is(u, ["input"])} | {"name" | name == ""; plan_is(u, ["input", "name"])}
	n := {"tags": tags, "region": region, "name": name, "named": true, "unknown": ((whole | keys) | ru) | nu}
}

plan_region_keys(provider) := ["location", "region"] if provider == "google"

else := ["region"]

plan_region(provider, after, u, pc) := {"region": plan_lower(provider, own), "unknown": set()} if {
	own := plan_first_string(after, plan_region_keys(provider))
	own != ""
} else := {"region": plan_lower(provider, pc.region), "unknown": unknown} if {
	attr_unknown := {k | some k in plan_region_keys(provider); plan_is(u, [k])}
	unknown := {"region" | pc.region_unknown} | {"region" |
		pc.region == ""
		count(attr_unknown) > 0
		provider != "aws"
	}
}

plan_lower(provider, s) := lower(s) if provider == "google"

else := s

plan_name_rule(provider, type) := {"attrs": [a.attribute], "listed": true, "trim": object.get(a, "trim_prefix", "")} if {
	a := tables.names[type]
} else := {"attrs": tables.default_names[provider], "listed": false, "trim": ""} if {
	tables.default_names[provider]
} else := {"attrs": tables.default_name, "listed": false, "trim": ""}

plan_name(provider, type, after, u, t) := {"name": "", "named": false, "unknown": set()} if {
	plan_name_rule(provider, type).attrs == [""]
} else := n if {
	rule := plan_name_rule(provider, type)
	hits := [a | some a in rule.attrs; plan_name_hit(after, u, a)]
	n := plan_name_from(hits, rule, after, u, t)
}

plan_name_hit(after, u, a) if a == "tags.Name"

plan_name_hit(after, u, a) if is_string(object.get(after, a, null))

plan_name_hit(after, u, a) if plan_is(u, [a])

plan_name_hit(after, u, a) if plan_has(after, a)

plan_name_from(hits, rule, after, u, t) := {"name": "", "named": rule.listed, "unknown": set()} if count(hits) == 0

else := {"name": object.get(plan_or_empty(t.tags), "Name", ""), "named": true, "unknown": unknown} if {
	hits[0] == "tags.Name"
	unknown := {"name" |
		not plan_has(plan_or_empty(t.tags), "Name")
		some x in t.unknown
		x in {"tags", "tags.Name"}
	}
} else := {"name": plan_trim(after[hits[0]], rule.trim), "named": true, "unknown": set()} if {
	is_string(after[hits[0]])
} else := {"name": "", "named": true, "unknown": {"name"}} if {
	plan_is(u, [hits[0]])
} else := {"name": "", "named": true, "unknown": set()}

plan_trim(s, prefix) := trim_prefix(s, prefix)
