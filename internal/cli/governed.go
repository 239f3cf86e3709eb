package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

// loadPolicy reads policy.yaml; a malformed policy is a usage error.
func (a *app) loadPolicy(r *repo.Repo) (*policy.Policy, error) {
	data, err := r.ReadFile(repo.PolicyFile, strictyaml.MaxSize)
	if err != nil {
		return nil, usage(err, "run `groundzero init`, or restore governance/policy.yaml")
	}
	p, err := policy.Parse(repo.PolicyFile, data)
	if err != nil {
		var pe *policy.InvalidError
		if errors.As(err, &pe) {
			return nil, usage(err, pe.Hint)
		}
		return nil, usage(err, "")
	}
	return p, nil
}

// resolveEnv checks --env against the policy; with one environment it is the
// default.
func resolveEnv(p *policy.Policy, name string) (string, error) {
	if name == "" {
		if len(p.Environments) == 1 {
			return p.Environments[0].Name, nil
		}
		return "", usage(errors.New("--env is required: policy.yaml declares several environments"), "")
	}
	if p.Environment(name) == nil {
		var names []string
		for _, e := range p.Environments {
			names = append(names, e.Name)
		}
		return "", usage(fmt.Errorf("environment %q is not declared in %s (declared: %s)", name, repo.PolicyFile, strings.Join(names, ", ")),
			"add it under environments: in governance/policy.yaml")
	}
	return name, nil
}

// parityEngine compiles the built-in and custom rules for env.
func (a *app) parityEngine(r *repo.Repo, p *policy.Policy, env string) (*parity.Engine, error) {
	mods, err := parity.LoadCustom(r.Abs(repo.RegoDir))
	if err != nil {
		return nil, usage(err, "")
	}
	custom, err := parity.ParseCustom(mods, func(p string) string {
		rel, err := filepath.Rel(r.Root, p)
		if err != nil {
			return p
		}
		return filepath.ToSlash(rel)
	})
	if err != nil {
		return nil, usage(err, "fix the Rego file; custom rules use package groundzero.custom and `deny contains msg if { … }`")
	}
	e, err := parity.New(a.ctx, p, env, custom)
	if err != nil {
		return nil, usage(err, "")
	}
	return e, nil
}

// parityGate evaluates the rules and turns the violations into a gate result.
func (a *app) parityGate(e *parity.Engine, name string, in *parity.Input) (gate.Result, []parity.Violation, error) {
	vs, err := e.Check(a.ctx, in)
	if err != nil {
		return gate.Result{}, nil, usage(err, "")
	}
	if len(vs) == 0 {
		return gate.Result{Name: name, OK: true, Detail: fmt.Sprintf("%d resource(s) meet the %s policy of environment %s", len(in.Resources), in.Source, e.Env)}, nil, nil
	}
	var lines []string
	for _, v := range vs {
		lines = append(lines, v.String())
	}
	return gate.Result{Name: name, Detail: strings.Join(lines, "; "),
		Hint: "change the configuration to meet governance/policy.yaml (or change the policy through review); `groundzero policy check` lists every violation"}, vs, nil
}

func filepathAbs(p string) (string, error) { return filepath.Abs(p) }
func filepathRel(base, p string) (string, error) {
	r, err := filepath.Rel(base, p)
	return filepath.ToSlash(r), err
}
