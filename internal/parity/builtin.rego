# Built-in parity rules of groundzero. They read the environment's rules from
# data.groundzero (policy.yaml) and normalised resources from input: each
# resource has address, type, provider, tags (null when the type takes no
# tags), region and name ("" when unknown), and the raw values; input.backend
# is the backend type of the effective configuration (after override files,
# which input.overrides names) and is absent for a plan.
package groundzero.parity

import rego.v1

env := data.groundzero.env

pol := data.groundzero.policy

violation(address, rule, expected, found) := {"address": address, "rule": rule, "expected": expected, "found": found}

deny contains v if {
	some r in input.resources
	r.type in pol.denied
	v := violation(r.address, "denied-type", "no resource of a type in resources.denied", r.type)
}

deny contains v if {
	count(pol.allowed) > 0
	some r in input.resources
	not r.type in pol.allowed
	v := violation(r.address, "allowed-type", sprintf("a type in resources.allowed (%s)", [concat(", ", pol.allowed)]), r.type)
}

regions := {r | some r in env.regions}

deny contains v if {
	count(regions) > 0
	some r in input.resources
	r.region != ""
	not regions[r.region]
	v := violation(r.address, "region", sprintf("a region of environment %s (%s)", [env.name, concat(", ", env.regions)]), r.region)
}

# Tag values are strings, so r.tags[key] is undefined exactly when the tag is
# missing; is_object skips types that take no tags (tags is null).
deny contains v if {
	some r in input.resources
	is_object(r.tags)
	some key, pattern in env.tags
	not r.tags[key]
	v := violation(r.address, "required-tag", sprintf("tag %q matching %s", [key, pattern]), "no such tag")
}

deny contains v if {
	some r in input.resources
	is_object(r.tags)
	some key, pattern in env.tags
	value := r.tags[key]
	not regex.match(pattern, value)
	v := violation(r.address, "tag-value", sprintf("tag %q matching %s", [key, pattern]), sprintf("%q", [value]))
}

deny contains v if {
	some r in input.resources
	pattern := env.naming[r.type]
	not regex.match(pattern, r.name)
	v := violation(r.address, "naming", sprintf("a name matching %s", [pattern]), found_name(r.name))
}

found_name(name) := "no name" if name == ""

found_name(name) := sprintf("%q", [name]) if name != ""

deny contains v if {
	input.backend
	not input.backend in pol.backend_types
	v := violation("terraform.backend", "backend", sprintf("backend %s for environment %s (%s)", [concat(" or ", pol.backend_types), env.name, env.backend]), input.backend)
}
