package ciidentity

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// stmt is a statement in a comparable form: every list sorted, condition
// operators and keys lower-cased (IAM compares them case-insensitively).
type stmt struct {
	Sid          string
	Effect       string
	Principal    map[string][]string
	Action       []string
	Resource     []string
	Condition    map[string]map[string][]string
	NotPrincipal bool
	NotAction    bool
	NotResource  bool
}

// maxDocument bounds a live document (IAM's own limits are far lower).
const maxDocument = 1 << 20

// parseDocument reads an IAM policy document as IAM stores it (JSON,
// possibly URL-encoded, as GetRole and GetRolePolicy return it).
func parseDocument(doc string) ([]stmt, error) {
	if len(doc) > maxDocument {
		return nil, fmt.Errorf("policy document of %d bytes", len(doc))
	}
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		d, err := url.QueryUnescape(doc)
		if err != nil {
			return nil, fmt.Errorf("policy document is neither JSON nor URL-encoded JSON")
		}
		doc = d
	}
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		return nil, fmt.Errorf("policy document is not JSON: %v", err)
	}
	var list []map[string]any
	if err := json.Unmarshal(raw.Statement, &list); err != nil {
		var one map[string]any
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return nil, fmt.Errorf("policy document has no statement list")
		}
		list = []map[string]any{one}
	}
	var out []stmt
	for _, m := range list {
		s := stmt{Principal: map[string][]string{}, Condition: map[string]map[string][]string{}}
		s.Sid, _ = m["Sid"].(string)
		s.Effect, _ = m["Effect"].(string)
		for k, v := range m {
			switch k {
			case "Principal", "NotPrincipal":
				s.NotPrincipal = k == "NotPrincipal"
				switch p := v.(type) {
				case string: // "*"
					s.Principal["*"] = []string{p}
				case map[string]any:
					for pk, pv := range p {
						s.Principal[pk] = strs(pv)
					}
				}
			case "Action", "NotAction":
				s.NotAction = k == "NotAction"
				for _, a := range strs(v) {
					s.Action = append(s.Action, strings.ToLower(a))
				}
			case "Resource", "NotResource":
				s.NotResource = k == "NotResource"
				s.Resource = strs(v)
			case "Condition":
				c, _ := v.(map[string]any)
				for op, kv := range c {
					keys, _ := kv.(map[string]any)
					lop := strings.ToLower(op)
					if s.Condition[lop] == nil {
						s.Condition[lop] = map[string][]string{}
					}
					for key, vals := range keys {
						s.Condition[lop][strings.ToLower(key)] = strs(vals)
					}
				}
			}
		}
		sort.Strings(s.Action)
		sort.Strings(s.Resource)
		out = append(out, s)
	}
	return out, nil
}

// strs reads a string or a list of strings (numbers and booleans as IAM
// prints them).
func strs(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	case nil:
	default:
		out = []string{fmt.Sprint(x)}
	}
	sort.Strings(out)
	return out
}

func (s stmt) key() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// comparison is what compareDocuments found: nothing, drift, or widening
// (which is also drift), each with its reasons.
type comparison struct {
	Drift    []string
	Widening []string
}

func (c comparison) same() bool { return len(c.Drift) == 0 && len(c.Widening) == 0 }

// compareDocuments compares a live document with the generated one. Every
// live Allow statement must be covered by a generated one: no principal,
// action or resource beyond it, and every condition of it present with no
// value beyond it. What is not covered is widening; any other difference
// (a statement removed, a narrower condition, a Deny added) is drift.
func compareDocuments(want Document, live string) comparison {
	wb, _ := json.Marshal(want)
	ws, _ := parseDocument(string(wb))
	ls, err := parseDocument(live)
	if err != nil {
		return comparison{Widening: []string{"the live document cannot be read: " + err.Error()}}
	}
	var c comparison
	wk, lk := map[string]bool{}, map[string]bool{}
	for _, s := range ws {
		wk[s.key()] = true
	}
	for _, s := range ls {
		lk[s.key()] = true
	}
	for i, s := range ls {
		if !strings.EqualFold(s.Effect, "Allow") {
			continue
		}
		if why := uncovered(s, ws); why != "" {
			c.Widening = append(c.Widening, fmt.Sprintf("statement %d%s %s", i+1, sidOf(s), why))
		}
	}
	if len(c.Widening) > 0 {
		return c
	}
	for _, s := range ws {
		if !lk[s.key()] {
			c.Drift = append(c.Drift, fmt.Sprintf("generated statement%s is not there as generated", sidOf(s)))
		}
	}
	for i, s := range ls {
		if !wk[s.key()] {
			c.Drift = append(c.Drift, fmt.Sprintf("statement %d%s is not one generated", i+1, sidOf(s)))
		}
	}
	return c
}

func sidOf(s stmt) string {
	if s.Sid == "" {
		return ""
	}
	return " (" + s.Sid + ")"
}

// uncovered says why no generated statement covers live statement s, or ""
// when one does. The reason is given against the generated statement of the
// same Sid, else the first.
func uncovered(s stmt, gen []stmt) string {
	if s.NotPrincipal || s.NotAction || s.NotResource {
		return "uses NotPrincipal, NotAction or NotResource, which admit everything not listed"
	}
	var reasons []string
	for _, g := range gen {
		r := coverReasons(s, g)
		if len(r) == 0 {
			return ""
		}
		if g.Sid == s.Sid || reasons == nil {
			reasons = r
		}
	}
	if reasons == nil {
		return "is not generated at all"
	}
	return strings.Join(reasons, "; ")
}

func coverReasons(s, g stmt) []string {
	var r []string
	if !strings.EqualFold(g.Effect, "Allow") {
		return []string{"is not generated"}
	}
	for k, vs := range s.Principal {
		for _, v := range vs {
			if !slices.Contains(g.Principal[k], v) {
				r = append(r, fmt.Sprintf("adds principal %s %s", k, v))
			}
		}
	}
	for _, a := range s.Action {
		if !slices.Contains(g.Action, a) {
			r = append(r, "adds action "+a)
		}
	}
	if len(s.Resource) == 0 && len(g.Resource) > 0 {
		r = append(r, "names no resource")
	}
	for _, res := range s.Resource {
		if !slices.ContainsFunc(g.Resource, func(gr string) bool { return resourceWithin(res, gr) }) {
			if strings.Contains(res, "*") {
				r = append(r, "resource "+res+" is broader than generated")
			} else {
				r = append(r, "adds resource "+res)
			}
		}
	}
	for op, keys := range g.Condition {
		for key, gvals := range keys {
			vals, lop := liveCondition(s, op, key)
			if vals == nil {
				r = append(r, fmt.Sprintf("lacks condition %s %s", op, key))
				continue
			}
			for _, v := range vals {
				if !valueWithin(v, lop, gvals, op) {
					r = append(r, fmt.Sprintf("condition %s %s admits %s", lop, key, v))
				}
			}
		}
	}
	return r
}

// liveCondition finds the condition on key under op in s, or under
// StringEquals where op is StringLike (a narrower operator).
func liveCondition(s stmt, op, key string) ([]string, string) {
	if v, ok := s.Condition[op][key]; ok {
		return v, op
	}
	if op == "stringlike" {
		if v, ok := s.Condition["stringequals"][key]; ok {
			return v, "stringequals"
		}
	}
	return nil, ""
}

// valueWithin reports whether live value v (under lop) admits nothing the
// generated values (under gop) do not.
func valueWithin(v, lop string, gvals []string, gop string) bool {
	for _, g := range gvals {
		switch {
		case v == g:
			return true
		case gop == "stringlike" && lop == "stringequals" && globMatch(g, v):
			return true
		case gop == "stringlike" && lop == "stringlike" && prefixGlobWithin(v, g):
			return true
		}
	}
	return false
}

// resourceWithin reports whether resource pattern r matches only what
// generated pattern g matches.
func resourceWithin(r, g string) bool {
	return r == g || prefixGlobWithin(r, g)
}

// prefixGlobWithin: g is PREFIX* with no other wildcard, and r starts with
// PREFIX.
func prefixGlobWithin(r, g string) bool {
	p, ok := strings.CutSuffix(g, "*")
	return ok && !strings.ContainsAny(p, "*?") && strings.HasPrefix(r, p)
}

// globMatch matches IAM's StringLike: * any run, ? one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}
