# Built-in parity rules of groundzero.
#
# They read the environment's rules from data.groundzero (policy.yaml and the
# type tables) and normalised resources from `resources`, which another
# module of this package defines: in groundzero it is input.resources, and in
# an export (groundzero policy export) plan.rego computes it from raw plan
# JSON, so conftest and opa eval see the same resources.
#
# Each resource has address, type, provider, tags (null when the type takes
# no tags), region and name ("" when there is none), named (the type has a
# name), and unknown: an object whose keys are the parts that are unknown
# until apply ("tags" for the whole tag set, "tags.KEY" for one tag's value,
# "region", "name").
#
# Findings go to deny, or for values unknown until apply to deny or warn as
# policy.yaml says (parity.unknown). A finding that a policy.yaml waiver
# (parity.waive) covers goes to waived instead.
package groundzero.parity

import rego.v1

env := data.groundzero.env

pol := data.groundzero.policy

tables := data.groundzero.tables

finding(r, rule, expected, found) := {
	"address": r.address, "rule": rule, "expected": expected, "found": found,
	"msg": sprintf("%s: %s: expected %s, found %s", [r.address, rule, expected, found]),
}

unknown_finding(r, what) := finding(r, "unknown", what, "unknown until apply")

is_unknown(r, what) if r.unknown[what]

denied := {t | some t in pol.denied}

allowed := {t | some t in pol.allowed}

findings contains f if {
	some r in resources
	denied[r.type]
	f := finding(r, "denied-type", "no resource of a type in resources.denied", r.type)
}

findings contains f if {
	count(allowed) > 0
	some r in resources
	not allowed[r.type]
	f := finding(r, "allowed-type", sprintf("a type in resources.allowed (%s)", [concat(", ", pol.allowed)]), r.type)
}

dns_types := {t | some t in tables.dns_types}

findings contains f if {
	some r in resources
	dns_types[r.type]
	f := finding(r, "dns", "no DNS zone or record: authoritative DNS is controlled outside this repository", r.type)
}

credential_types := {t | some t in tables.credential_types}

findings contains f if {
	some r in resources
	credential_types[r.type]
	f := finding(r, "long-lived-credential", "no long-lived credential: keep secrets in a secret store and use short-lived identities", r.type)
}

regions := {r | some r in env.regions}

region_expected := sprintf("a region of environment %s (%s)", [env.name, concat(", ", env.regions)])

findings contains f if {
	count(regions) > 0
	some r in resources
	r.region != ""
	not regions[r.region]
	f := finding(r, "region", region_expected, r.region)
}

unknowns contains f if {
	count(regions) > 0
	some r in resources
	r.unknown.region
	f := unknown_finding(r, sprintf("region: %s", [region_expected]))
}

tag_expected(key, pattern) := sprintf("tag %q matching %s", [key, pattern])

# Tag values are strings, so r.tags[key] is undefined exactly when the tag is
# absent; is_object skips types that take no tags (tags is null).
findings contains f if {
	some r in resources
	is_object(r.tags)
	some key, pattern in env.tags
	not r.tags[key]
	not r.unknown.tags
	not is_unknown(r, concat(".", ["tags", key]))
	f := finding(r, "required-tag", tag_expected(key, pattern), "no such tag")
}

unknowns contains f if {
	some r in resources
	r.unknown.tags
	is_object(r.tags)
	some key, pattern in env.tags
	not r.tags[key]
	f := unknown_finding(r, sprintf("required-tag: %s", [tag_expected(key, pattern)]))
}

# One tag's value is unknown: only resources with unknown parts are looked at.
unknowns contains f if {
	some r in resources
	some what, _ in r.unknown
	startswith(what, "tags.")
	is_object(r.tags)
	key := substring(what, 5, -1)
	pattern := env.tags[key]
	f := unknown_finding(r, sprintf("required-tag: %s", [tag_expected(key, pattern)]))
}

findings contains f if {
	some r in resources
	is_object(r.tags)
	some key, pattern in env.tags
	value := r.tags[key]
	not regex.match(pattern, value)
	f := finding(r, "tag-value", tag_expected(key, pattern), sprintf("%q", [value]))
}

# The naming pattern of a resource: its type's, else the default ("*") for
# a resource whose type has a name.
naming_pattern(r) := env.naming[r.type]

naming_pattern(r) := env.naming["*"] if {
	not env.naming[r.type]
	r.named
}

findings contains f if {
	some r in resources
	pattern := naming_pattern(r)
	not regex.match(pattern, r.name)
	not r.unknown.name
	f := finding(r, "naming", sprintf("a name matching %s", [pattern]), found_name(r.name))
}

unknowns contains f if {
	some r in resources
	r.unknown.name
	pattern := naming_pattern(r)
	f := unknown_finding(r, sprintf("naming: a name matching %s", [pattern]))
}

found_name(name) := "no name" if name == ""

found_name(name) := sprintf("%q", [name]) if name != ""

# input.backend is the backend type of a configuration (after override
# files, which input.overrides names); a plan has none, and neither has a
# configuration without a backend block (its state is local until
# bootstrap, which the backend gate judges).
findings contains f if {
	backend := input.backend
	not backend in pol.backend_types
	f := finding({"address": "terraform.backend"}, "backend", sprintf("backend %s for environment %s (%s)", [concat(" or ", pol.backend_types), env.name, env.backend]), backend)
}

# Waivers: parity.waive entries in policy.yaml, each with a rule, an
# address glob ("*" when the entry names none) and a reason.
waives(w, f) if {
	w.rule == f.rule
	glob.match(w.address, null, f.address)
}

is_waived(f) if {
	some w in pol.waive
	waives(w, f)
}

deny contains f if {
	some f in findings
	not is_waived(f)
}

deny contains f if {
	pol.unknown == "deny"
	some f in unknowns
	not is_waived(f)
}

warn contains f if {
	pol.unknown == "warn"
	some f in unknowns
	not is_waived(f)
}

waived contains object.union(f, {"reason": concat("; ", sort([w.reason | some w in pol.waive; waives(w, f)]))}) if {
	some f in findings | unknowns
	is_waived(f)
}
