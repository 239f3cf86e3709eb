package lock

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

// MinApprovers is the fewest distinct people a lock or revocation needs,
// whatever policy.yaml says: the two-person rule.
const MinApprovers = 2

// Approve counts the distinct people whose current, role-holding signatures
// over data (in the namespace of kind) satisfy rule, raised to the
// two-person minimum. It returns their ids, or an error that says who
// counted and what is missing.
func Approve(what string, data []byte, sigs []*signature.Signature, reg *signers.Registry, now time.Time, kind string, rule policy.Approval) ([]string, error) {
	need := max(rule.Count, MinApprovers)
	outcomes := reg.Check(data, sigs, kind, now, signers.Current)
	ids, err := signers.Count(outcomes, signers.Requirement{What: what, Roles: rule.Roles, Threshold: need})
	if err != nil {
		return ids, err
	}
	if len(rule.RequireOneOf) > 0 && !slices.ContainsFunc(ids, func(id string) bool {
		s := reg.Lookup(id)
		return s != nil && s.HasAnyRole(rule.RequireOneOf)
	}) {
		return ids, fmt.Errorf("%s is signed by %s, none of whom is %s", what, strings.Join(ids, ", "), strings.Join(rule.RequireOneOf, " or "))
	}
	return ids, nil
}
