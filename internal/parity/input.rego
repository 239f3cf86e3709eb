# groundzero's own input: resources normalised in Go (plan.go, config.go).
# An export replaces this module with plan.rego, which normalises raw plan
# JSON in Rego the same way.
package groundzero.parity

import rego.v1

resources := input.resources
