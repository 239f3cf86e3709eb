package cli

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/parity"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sarif"
)

func (a *app) policyCheckCmd() *cobra.Command {
	var planJSON, dir, env, format string
	c := &cobra.Command{
		Use:   "check [--plan PLAN.json] [--dir DIR] [--env ENV]",
		Short: "evaluate the parity policy; exit 1 on violations",
		Long: `check evaluates the built-in parity rules (required tags, naming, regions,
allowed and denied resource types, DNS, long-lived credentials, backend) and
the custom rules in governance/rego/ on the plan JSON given with --plan (as
` + "`tofu show -json PLANFILE`" + ` writes it), or else on the configuration in --dir
(default infra/bootstrap), read statically. Each finding names the resource
address, the rule, and what was expected and found. On a plan, a value a rule
needs that is unknown until apply is a finding of its own (rule unknown),
which denies or warns as parity.unknown in policy.yaml says; on a
configuration it is left to the plan check. Findings that a parity.waive
entry covers are listed with its reason and do not fail.

--format sarif writes SARIF 2.1.0 for code scanning, with paths relative to
the repository and the line of each configuration finding; --format junit
writes JUnit XML (one test case per resource) for CI test reports.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json", "sarif", "junit"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			pol, err := a.loadPolicy(r)
			if err != nil {
				return err
			}
			if env, err = resolveEnv(pol, env); err != nil {
				return err
			}
			e, err := a.parityEngine(r, pol, env)
			if err != nil {
				return err
			}
			var in *parity.Input
			var res *parity.Result
			var loc locator
			count := 0
			if planJSON != "" {
				f, err := os.Open(planJSON)
				if err != nil {
					return usage(err, "")
				}
				defer f.Close()
				loc = locator{root: r.Root, file: planJSON}
				if format == "junit" {
					// One test case per resource: keep them.
					if in, err = parity.ReadPlan(f, e.Values); err == nil {
						res, err = e.Evaluate(a.ctx, in)
						count = len(in.Resources)
					}
				} else {
					in = &parity.Input{Source: "plan"}
					res, count, err = e.EvaluatePlan(a.ctx, f)
				}
				var pe *parity.PlanError
				if errors.As(err, &pe) {
					return usage(fmt.Errorf("%s: %w", planJSON, err), "give the output of `tofu show -json PLANFILE`")
				}
				if err != nil {
					return usage(err, "")
				}
			} else {
				if dir == "" {
					dir = r.Abs(repo.BootstrapDir)
				}
				if in, err = parity.FromConfig(dir); err != nil {
					return usage(err, "fix the configuration as the error says; OpenTofu would refuse it too")
				}
				loc = locator{root: r.Root, dir: dir}
				if res, err = e.Evaluate(a.ctx, in); err != nil {
					return usage(err, "")
				}
				count = len(in.Resources)
			}
			switch format {
			case "json":
				a.printJSON(map[string]any{"ok": len(res.Deny) == 0, "env": env, "source": in.Source, "resources": count,
					"violations": nonNil(res.Deny), "warnings": nonNil(res.Warn), "waived": nonNil(res.Waived)})
			case "sarif":
				a.printJSON(sarifLog(res, loc))
			case "junit":
				if err := junit(a.stdout, in, res, env, loc); err != nil {
					return err
				}
			default:
				for _, v := range res.Deny {
					fmt.Fprintf(a.stdout, "%s\n", v)
				}
				for _, v := range res.Warn {
					fmt.Fprintf(a.stdout, "warning: %s\n", v)
				}
				for _, v := range res.Waived {
					fmt.Fprintf(a.stdout, "waived: %s (%s)\n", v, v.Reason)
				}
				fmt.Fprintf(a.stdout, "%d resource(s) checked against environment %s: %d violation(s)", count, env, len(res.Deny))
				if len(res.Warn) > 0 || len(res.Waived) > 0 {
					fmt.Fprintf(a.stdout, ", %d warning(s), %d waived", len(res.Warn), len(res.Waived))
				}
				fmt.Fprintln(a.stdout)
			}
			rec := a.recorder(r)
			rec.add("policy.check", in.Source, map[string]any{"env": env, "resources": count,
				"violations": len(res.Deny), "warnings": len(res.Warn), "waived": len(res.Waived)})
			var result error
			if len(res.Deny) > 0 {
				result = failed(fmt.Errorf("%d parity violation(s)", len(res.Deny)), "change the configuration to meet governance/policy.yaml")
			}
			return rec.flush(result)
		},
	}
	c.Flags().StringVar(&planJSON, "plan", "", "`PLAN.json` as tofu show -json PLANFILE writes it")
	c.Flags().StringVar(&dir, "dir", "", "configuration `DIR` (default infra/bootstrap)")
	c.Flags().StringVar(&env, "env", "", "environment `ENV` (default: the only one)")
	formatFlagVar(c, &format, "text", "json", "sarif", "junit")
	return c
}

func nonNil(vs []parity.Violation) []parity.Violation {
	if vs == nil {
		return []parity.Violation{}
	}
	return vs
}

// locator turns a finding into a SARIF artifact location, relative to the
// repository root: the configuration file and line, or the plan file.
type locator struct {
	root, dir, file string
}

func (l locator) uri(v parity.Violation) (string, int) {
	p, line := l.file, 0
	if l.dir != "" {
		if v.File == "" {
			return "", 0
		}
		p, line = filepath.Join(l.dir, v.File), v.Line
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.ToSlash(p), line
	}
	rel, err := filepathRel(l.root, abs)
	if err != nil || strings.HasPrefix(rel, "../") || rel == ".." {
		// Outside the repository: code scanning can only show the name.
		return filepath.Base(abs), line
	}
	return rel, line
}

// ruleHelp describes each built-in rule for SARIF's rule list.
var ruleHelp = map[string]string{
	"allowed-type":          "only resource types in resources.allowed",
	"backend":               "the backend the environment declares",
	"denied-type":           "no resource of a type in resources.denied",
	"dns":                   "no DNS zone or record: authoritative DNS is controlled outside this repository",
	"long-lived-credential": "no resource that mints a long-lived credential: secrets live in secret stores",
	"naming":                "names match the environment's naming pattern",
	"region":                "resources live in the environment's regions",
	"required-tag":          "every required tag is present",
	"tag-value":             "every required tag's value matches its pattern",
	"unknown":               "a value a rule needs is unknown until apply",
}

// sarifLog renders findings as a SARIF 2.1.0 log: denials are errors,
// warnings warnings, and waived findings carry a suppression with the
// waiver's reason.
func sarifLog(res *parity.Result, loc locator) map[string]any {
	rules := map[string]bool{}
	results := []any{}
	add := func(v parity.Violation, level string, waived bool) {
		rules[v.Rule] = true
		msg := v.Message
		if msg == "" {
			msg = fmt.Sprintf("expected %s, found %s", v.Expected, v.Found)
		}
		location := map[string]any{
			"logicalLocations": []any{map[string]any{"fullyQualifiedName": v.Address, "kind": "resource"}},
		}
		if uri, line := loc.uri(v); uri != "" {
			location["physicalLocation"] = sarif.Physical(uri, line)
		}
		result := map[string]any{
			"ruleId":    v.Rule,
			"level":     level,
			"message":   map[string]any{"text": v.Address + ": " + msg},
			"locations": []any{location},
		}
		if waived {
			result["suppressions"] = []any{map[string]any{"kind": "external", "justification": v.Reason}}
		}
		results = append(results, result)
	}
	for _, v := range res.Deny {
		add(v, "error", false)
	}
	for _, v := range res.Warn {
		add(v, "warning", false)
	}
	for _, v := range res.Waived {
		add(v, "error", true)
	}
	var names []string
	for r := range rules {
		names = append(names, r)
	}
	sort.Strings(names)
	var ruleList []sarif.Rule
	for _, r := range names {
		text := ruleHelp[r]
		if text == "" {
			text = "custom rule " + r + " (governance/rego)"
		}
		ruleList = append(ruleList, sarif.Rule{ID: r, Text: text})
	}
	return sarif.Log("groundzero", ruleList, results)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failures  []junitResult `xml:"failure"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junit writes one test case per checked resource (and one for the
// backend): a denial is a failure; warnings and waivers go to system-out.
func junit(w io.Writer, in *parity.Input, res *parity.Result, env string, loc locator) error {
	type entry struct {
		c     *junitCase
		notes []string
	}
	cases := map[string]*entry{}
	var order []string
	get := func(addr, typ string) *entry {
		if e, ok := cases[addr]; ok {
			return e
		}
		e := &entry{c: &junitCase{Name: addr, Classname: "groundzero.parity." + typ}}
		cases[addr] = e
		order = append(order, addr)
		return e
	}
	for _, r := range in.Resources {
		e := get(r.Address, r.Type)
		if loc.dir != "" {
			e.c.File, e.c.Line = loc.uri(parity.Violation{File: r.File, Line: r.Line})
		}
	}
	for _, v := range res.Deny {
		e := get(v.Address, "")
		e.c.Failures = append(e.c.Failures, junitResult{Message: v.String(), Type: v.Rule, Text: v.String()})
	}
	for _, v := range res.Warn {
		e := get(v.Address, "")
		e.notes = append(e.notes, "warning: "+v.String())
	}
	for _, v := range res.Waived {
		e := get(v.Address, "")
		e.notes = append(e.notes, fmt.Sprintf("waived: %s (%s)", v, v.Reason))
	}
	suite := junitSuite{Name: "groundzero parity (" + in.Source + ", environment " + env + ")"}
	for _, addr := range order {
		e := cases[addr]
		e.c.SystemOut = strings.Join(e.notes, "\n")
		suite.Cases = append(suite.Cases, *e.c)
		suite.Tests++
		if len(e.c.Failures) > 0 {
			suite.Failures++
		}
	}
	doc := junitSuites{Name: "groundzero", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	if _, err := w.Write([]byte(xml.Header)); err != nil {
		return err
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	out = append(out, '\n')
	_, err = w.Write(out)
	return err
}
