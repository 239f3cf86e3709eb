package gate

import (
	"context"
	"fmt"
	"strings"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/secretscan"
)

// maxListed bounds the findings a result's detail names; SARIF lists all.
const maxListed = 20

// SecretsGate scans every governed file for credentials. A finding fails
// the gate unless a secrets.waive entry in policy.yaml, which carries a
// reason, names its rule and file (and line). The findings not waived are
// kept in e.Secrets. Neither the result nor the findings hold any byte of
// what was found (T26).
func (e *Env) SecretsGate(ctx context.Context) Result {
	const name = "secrets"
	paths, err := manifest.Governed(e.Repo)
	if err != nil {
		return fail(name, err.Error(), "governed files must be regular files inside the repository")
	}
	found, err := secretscan.Scan(ctx, e.Repo, paths)
	if err != nil {
		r := fail(name, err.Error(), "governed files must be regular files inside the repository, each at most 64 MiB")
		r.Config = isConfig(err)
		return r
	}
	var waivers []secretscan.Waiver
	if e.Policy != nil {
		for _, w := range e.Policy.Secrets.Waive {
			waivers = append(waivers, secretscan.Waiver{Rule: w.Rule, Path: w.Path, Line: w.Line})
		}
	}
	kept, waived, unused := secretscan.Waive(found, waivers)
	e.Secrets = kept
	var notes []string
	if len(waived) > 0 {
		notes = append(notes, fmt.Sprintf("waived in %s: %s", repo.PolicyFile, list(waived)))
	}
	if len(unused) > 0 {
		var s []string
		for _, w := range unused {
			s = append(s, w.String())
		}
		notes = append(notes, fmt.Sprintf("%d waiver(s) in %s match nothing and can be removed: %s", len(unused), repo.PolicyFile, strings.Join(s, ", ")))
	}
	if len(kept) == 0 {
		what := fmt.Sprintf("%d governed file(s) hold no credentials", len(paths))
		if len(waived) > 0 {
			what += fmt.Sprintf(" but %d waived finding(s)", len(waived))
		}
		return pass(name, strings.Join(append([]string{what}, notes...), "; "))
	}
	detail := fmt.Sprintf("%d credential(s) in governed files: %s", len(kept), list(kept))
	return fail(name, strings.Join(append([]string{detail}, notes...), "; "), secretscan.Fix)
}

// list names findings by file, line and rule, at most maxListed of them.
func list(fs []secretscan.Finding) string {
	var s []string
	for i, f := range fs {
		if i == maxListed {
			s = append(s, fmt.Sprintf("and %d more (`groundzero check --format sarif` lists every one)", len(fs)-maxListed))
			break
		}
		s = append(s, f.String())
	}
	return strings.Join(s, ", ")
}
