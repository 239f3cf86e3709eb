# The built-in parity rules of groundzero, written for conftest over raw plan
# JSON (conftest has no normalisation step), for the side-by-side benchmark.
package groundzero.parity

import rego.v1

env := data.groundzero.env

region(rc) := rc.change.after.region if rc.change.after.region

region(rc) := input.configuration.provider_config.aws.expressions.region.constant_value if not rc.change.after.region

changes contains rc if {
	some rc in input.resource_changes
	rc.mode == "managed"
	some action in rc.change.actions
	action in {"create", "update"}
}

deny contains msg if {
	some rc in changes
	rc.type in data.groundzero.denied
	msg := sprintf("%s: denied-type", [rc.address])
}

deny contains msg if {
	some rc in changes
	r := region(rc)
	not r in env.regions
	msg := sprintf("%s: region %s", [rc.address, r])
}

deny contains msg if {
	some rc in changes
	tags := object.get(rc.change.after, "tags_all", {})
	some key, pattern in env.tags
	not key in object.keys(tags)
	msg := sprintf("%s: required-tag %s", [rc.address, key])
}

deny contains msg if {
	some rc in changes
	tags := object.get(rc.change.after, "tags_all", {})
	some key, pattern in env.tags
	value := tags[key]
	not regex.match(pattern, value)
	msg := sprintf("%s: tag-value %s", [rc.address, key])
}

deny contains msg if {
	some rc in changes
	pattern := env.naming[rc.type]
	not regex.match(pattern, rc.change.after.bucket)
	msg := sprintf("%s: naming", [rc.address])
}
