package policy_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/strictyaml"
)

const file = "governance/policy.yaml"

func mustParse(t *testing.T, data string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(file, []byte(data))
	if err != nil {
		t.Fatalf("Parse(%q) = %v, want nil error", data, err)
	}
	return p
}

const minimal = `version: 1
backend:
  kind: s3
environments:
  - name: prod
`

func TestTemplateParses(t *testing.T) {
	for _, backend := range policy.BackendKinds {
		for _, env := range []string{"dev", "prod", "a", "staging-eu-1"} {
			data := policy.Template(backend, env, "")
			p, err := policy.Parse(file, data)
			if err != nil {
				t.Errorf("Parse(Template(%q, %q)) = %v, want nil error", backend, env, err)
				continue
			}
			if p.Backend.Kind != backend {
				t.Errorf("Parse(Template(%q, %q)).Backend.Kind = %q, want %q", backend, env, p.Backend.Kind, backend)
			}
			e := p.Environment(env)
			if e == nil {
				t.Errorf("Parse(Template(%q, %q)).Environment(%q) = nil", backend, env, env)
				continue
			}
			if e.Backend != backend {
				t.Errorf("Parse(Template(%q, %q)) env backend = %q, want %q (defaulted from backend.kind)", backend, env, e.Backend, backend)
			}
			if !e.ConfirmRequired() {
				t.Errorf("Parse(Template(%q, %q)) env ConfirmRequired = false, want true", backend, env)
			}
		}
	}
}

func TestTemplateLocalDev(t *testing.T) {
	p := mustParse(t, string(policy.Template("local", "dev", "")))
	if p.Version != 1 || p.File != file || p.Gates.RequireTag {
		t.Errorf("Parse(Template(local, dev)) = version %d, file %q, require_tag %v, want 1, %q, false", p.Version, p.File, p.Gates.RequireTag, file)
	}
	if len(p.Environments) != 1 || p.Environments[0].Name != "dev" {
		t.Fatalf("Parse(Template(local, dev)).Environments = %+v, want one named dev", p.Environments)
	}
	if p.Environment("prod") != nil {
		t.Errorf("Environment(prod) = %+v, want nil", p.Environment("prod"))
	}
}

func TestDefaults(t *testing.T) {
	for name, data := range map[string]string{
		"minimal":  minimal,
		"template": string(policy.Template("local", "dev", "")),
	} {
		p := mustParse(t, data)
		if p.Evidence.Store != policy.DefaultEvidenceStore {
			t.Errorf("%s: Evidence.Store = %q, want %q", name, p.Evidence.Store, policy.DefaultEvidenceStore)
		}
		if p.Evidence.RetentionDays != 2555 {
			t.Errorf("%s: Evidence.RetentionDays = %d, want 2555", name, p.Evidence.RetentionDays)
		}
		if p.Gates.Manifest.Approvals != 1 {
			t.Errorf("%s: Gates.Manifest.Approvals = %d, want 1", name, p.Gates.Manifest.Approvals)
		}
		if p.Gates.Intent.DefaultTTL != "24h" || p.Gates.Intent.MaxTTL != "72h" {
			t.Errorf("%s: Gates.Intent = %+v, want 24h and 72h", name, p.Gates.Intent)
		}
		if len(p.Gates.Approvals) != len(policy.Actions) {
			t.Errorf("%s: len(Gates.Approvals) = %d, want %d", name, len(p.Gates.Approvals), len(policy.Actions))
		}
		def := policy.DefaultApprovals()
		if len(def) != 5 {
			t.Fatalf("len(DefaultApprovals()) = %d, want 5", len(def))
		}
		for _, a := range policy.Actions {
			if got := p.Gates.Approvals[a]; !reflect.DeepEqual(got, def[a]) {
				t.Errorf("%s: Gates.Approvals[%s] = %+v, want %+v", name, a, got, def[a])
			}
		}
	}
}

func TestDefaultApprovals(t *testing.T) {
	def := policy.DefaultApprovals()
	if a := def["apply"]; a.Count != 1 || a.RequesterCounts == nil || !*a.RequesterCounts {
		t.Errorf("DefaultApprovals()[apply] = %+v, want count 1, requester counts", a)
	}
	for _, act := range []string{"bootstrap", "destroy", "revoke", "break-glass"} {
		a := def[act]
		if a.Count != 2 || a.RequesterCounts == nil || *a.RequesterCounts || len(a.RequireOneOf) == 0 {
			t.Errorf("DefaultApprovals()[%s] = %+v, want two-person rule", act, a)
		}
	}
	// Each call returns fresh values: changing one does not change the next.
	*def["apply"].RequesterCounts = false
	if again := policy.DefaultApprovals()["apply"]; !*again.RequesterCounts {
		t.Error("DefaultApprovals() shares state between calls")
	}
}

func TestExplicitValuesKept(t *testing.T) {
	p := mustParse(t, `version: 1
backend: {kind: gcs}
evidence:
  store: gs://bucket/evidence
  retention_days: 30
gates:
  require_tag: true
  manifest: {approvals: 3}
  checkpoint: {roles: [security], max_age: 30d}
  intent: {default_ttl: 1h, max_ttl: 1d12h}
  approvals:
    apply: {count: 2, roles: [approver], requester_counts: false}
    destroy: {count: 3}
environments:
  - name: prod
    backend: s3
    regions: [eu-west-1]
    confirm: false
    naming: {aws_s3_bucket: "^prod-[a-z-]+$"}
    tags: {owner: ".+"}
  - name: dev
resources:
  denied: [aws_iam_user]
  allowed: [aws_s3_bucket]
`)
	if p.Evidence.Store != "gs://bucket/evidence" || p.Evidence.RetentionDays != 30 {
		t.Errorf("Evidence = %+v, want gs://bucket/evidence, 30", p.Evidence)
	}
	if !p.Gates.RequireTag || p.Gates.Manifest.Approvals != 3 {
		t.Errorf("Gates = %+v, want require_tag, 3 manifest approvals", p.Gates)
	}
	if p.Gates.Intent.DefaultTTL != "1h" || p.Gates.Intent.MaxTTL != "1d12h" {
		t.Errorf("Gates.Intent = %+v, want 1h, 1d12h", p.Gates.Intent)
	}
	apply := p.Gates.Approvals["apply"]
	if apply.Count != 2 || !reflect.DeepEqual(apply.Roles, []string{"approver"}) || *apply.RequesterCounts {
		t.Errorf("Gates.Approvals[apply] = %+v, want count 2, roles [approver], requester not counted", apply)
	}
	// A partly written rule takes the rest from the default.
	destroy, def := p.Gates.Approvals["destroy"], policy.DefaultApprovals()["destroy"]
	if destroy.Count != 3 || !reflect.DeepEqual(destroy.Roles, def.Roles) || *destroy.RequesterCounts {
		t.Errorf("Gates.Approvals[destroy] = %+v, want count 3 with default roles, requester not counted", destroy)
	}
	if got := p.Gates.Approvals["revoke"]; !reflect.DeepEqual(got, policy.DefaultApprovals()["revoke"]) {
		t.Errorf("Gates.Approvals[revoke] = %+v, want the default", got)
	}
	prod, dev := p.Environment("prod"), p.Environment("dev")
	if prod.Backend != "s3" || prod.ConfirmRequired() || prod.Tags["owner"] != ".+" {
		t.Errorf("Environment(prod) = %+v, want backend s3, no confirm, owner tag", prod)
	}
	if dev.Backend != "gcs" || !dev.ConfirmRequired() {
		t.Errorf("Environment(dev) = %+v, want backend gcs (from backend.kind), confirm", dev)
	}
}

// A rule that sets only count takes roles and requester_counts from the
// default, but not require_one_of: writing `bootstrap: {count: 3}` to tighten
// the rule silently drops "one of them must be an approver or security",
// so three operators could approve a bootstrap. Either require_one_of is
// defaulted like roles, or this test records the opposite decision.
func TestPartialApprovalKeepsRequireOneOf(t *testing.T) {
	p := mustParse(t, minimal+"gates:\n  approvals:\n    bootstrap: {count: 3}\n")
	got, def := p.Gates.Approvals["bootstrap"], policy.DefaultApprovals()["bootstrap"]
	if !reflect.DeepEqual(got.RequireOneOf, def.RequireOneOf) {
		t.Errorf("Parse(bootstrap: {count: 3}).Gates.Approvals[bootstrap].RequireOneOf = %q, want the default %q", got.RequireOneOf, def.RequireOneOf)
	}
	// An explicit empty list is a deliberate choice and is kept.
	p = mustParse(t, minimal+"gates:\n  approvals:\n    bootstrap: {count: 3, require_one_of: []}\n")
	if got := p.Gates.Approvals["bootstrap"].RequireOneOf; got == nil || len(got) != 0 {
		t.Errorf("Parse(bootstrap: {require_one_of: []}).RequireOneOf = %#v, want an empty list", got)
	}
}

func TestSchemaJSON(t *testing.T) {
	s := policy.SchemaJSON()
	if !bytes.Contains(s, []byte(`"additionalProperties": false`)) {
		t.Errorf("SchemaJSON() does not forbid unknown fields")
	}
	s[0] = 'X'
	if policy.SchemaJSON()[0] == 'X' {
		t.Error("SchemaJSON() returns the embedded slice itself")
	}
}

func TestYAMLErrors(t *testing.T) {
	tmpl := string(policy.Template("local", "dev", ""))
	for name, tc := range map[string]struct {
		data string
		line int // 0: any line > 0
		msg  string
	}{
		"anchor and alias undefined": {
			data: "version: 1\nbackend: &b\n  kind: s3\nenvironments:\n  - name: dev\n",
			line: 2,
			msg:  "anchors",
		},
		"syntax": {
			data: "version: 1\nbackend:\n  kind: [local\nenvironments: []\n",
			msg:  "",
		},
		"bad indentation": {
			data: "version: 1\nbackend:\n  kind: local\n   x: 1\n",
		},
		"unknown top-level field": {
			data: minimal + "extra: true\n",
			line: 6,
			msg:  `unknown field "extra"`,
		},
		"unknown nested field": {
			data: strings.Replace(tmpl, "    approvals: 1", "    aprovals: 1", 1),
			msg:  `unknown field "aprovals"`,
		},
		"unknown environment field": {
			data: minimal + "    region: eu\n",
			line: 6,
			msg:  `unknown field "region"`,
		},
		"wrong type": {
			data: strings.Replace(tmpl, "require_tag: false", `require_tag: "yes"`, 1),
			msg:  "expected boolean",
		},
		"wrong type unquoted yes": {
			data: strings.Replace(tmpl, "require_tag: false", `require_tag: yes`, 1),
			msg:  "expected boolean",
		},
		"wrong type number": {
			data: minimal + "evidence:\n  retention_days: many\n",
			line: 7,
		},
		"duplicate key": {
			data: "version: 1\nbackend:\n  kind: s3\nbackend:\n  kind: local\nenvironments: [{name: dev}]\n",
			line: 4,
			msg:  "appears twice",
		},
		"duplicate nested key": {
			data: minimal + "    name: dev\n",
			line: 6,
			msg:  "appears twice",
		},
		"anchor and alias": {
			data: "version: 1\nbackend: &b\n  kind: s3\nenvironments:\n  - name: dev\n    backend: *b\n",
			line: 2,
			msg:  "anchors",
		},
		"merge key": {
			data: "version: 1\nbackend:\n  <<: {kind: s3}\nenvironments: [{name: dev}]\n",
			line: 3,
		},
		"custom tag": {
			data: "version: 1\nbackend:\n  kind: !aws s3\nenvironments: [{name: dev}]\n",
			line: 3,
			msg:  "tag",
		},
		"second document": {
			data: minimal + "---\n" + minimal,
			line: 6,
			msg:  "more than one",
		},
		"wrong version": {
			data: strings.Replace(minimal, "version: 1", "version: 2", 1),
			line: 1,
		},
		"bad backend": {
			data: strings.Replace(minimal, "kind: s3", "kind: ftp", 1),
			line: 3,
		},
		"missing environments": {
			data: "version: 1\nbackend:\n  kind: s3\n",
			line: 1,
			msg:  "environments",
		},
		"no environments": {
			data: "version: 1\nbackend:\n  kind: s3\nenvironments: []\n",
			line: 4,
		},
		"bad env name": {
			data: strings.Replace(minimal, "name: prod", "name: Prod", 1),
			line: 5,
		},
		"bad duration pattern": {
			data: minimal + "gates:\n  intent:\n    max_ttl: 3 days\n",
			line: 8,
		},
		"bad role": {
			data: minimal + "gates:\n  checkpoint:\n    roles: [admin]\n",
			line: 8,
		},
		"approval without count": {
			data: minimal + "gates:\n  approvals:\n    apply: {roles: [operator]}\n",
			line: 8,
		},
		"unknown action": {
			data: minimal + "gates:\n  approvals:\n    deploy: {count: 1}\n",
			line: 8,
			msg:  `unknown field "deploy"`,
		},
		"bad evidence store": {
			data: minimal + "evidence:\n  store: http://x\n",
			line: 7,
		},
	} {
		_, err := policy.Parse(file, []byte(tc.data))
		var se *strictyaml.Error
		if !errors.As(err, &se) {
			t.Errorf("Parse(%s) = %v, want *strictyaml.Error", name, err)
			continue
		}
		if se.Line <= 0 {
			t.Errorf("Parse(%s) = %v, want a line number", name, err)
		}
		if tc.line > 0 && se.Line != tc.line {
			t.Errorf("Parse(%s) line = %d, want %d (%v)", name, se.Line, tc.line, err)
		}
		if se.File != file {
			t.Errorf("Parse(%s) file = %q, want %q", name, se.File, file)
		}
		if !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%s) = %q, want mention of %q", name, se.Msg, tc.msg)
		}
	}
}

func TestUnknownNestedFieldPosition(t *testing.T) {
	data := strings.Replace(string(policy.Template("local", "dev", "")), "    approvals: 1", "    aprovals: 1", 1)
	_, err := policy.Parse(file, []byte(data))
	var se *strictyaml.Error
	if !errors.As(err, &se) {
		t.Fatalf("Parse(aprovals) = %v, want *strictyaml.Error", err)
	}
	lines := strings.Split(data, "\n")
	if se.Line < 1 || se.Line > len(lines) || !strings.Contains(lines[se.Line-1], "aprovals") {
		t.Fatalf("Parse(aprovals) line = %d, want the line holding aprovals", se.Line)
	}
	if want := strings.Index(lines[se.Line-1], "aprovals") + 1; se.Column != want {
		t.Errorf("Parse(aprovals) column = %d, want %d", se.Column, want)
	}
}

func TestInvalidErrors(t *testing.T) {
	for name, tc := range map[string]struct{ data, msg string }{
		"bad tag regex": {
			data: minimal + "    tags: {owner: \"[a-\"}\n",
			msg:  "tags.owner",
		},
		"bad naming regex": {
			data: minimal + "    naming: {aws_s3_bucket: \"(x\"}\n",
			msg:  "naming.aws_s3_bucket",
		},
		"duplicate env": {
			data: minimal + "  - name: prod\n",
			msg:  "declared twice",
		},
		"default ttl over max": {
			data: minimal + "gates:\n  intent: {default_ttl: 4d, max_ttl: 72h}\n",
			msg:  "longer than",
		},
		"default ttl over default max": {
			data: minimal + "gates:\n  intent: {default_ttl: 73h}\n",
			msg:  "longer than",
		},
		"allowed and denied": {
			data: minimal + "resources:\n  denied: [aws_iam_user]\n  allowed: [aws_iam_user]\n",
			msg:  "both allowed and denied",
		},
	} {
		_, err := policy.Parse(file, []byte(tc.data))
		var ie *policy.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("Parse(%s) = %v, want *policy.InvalidError", name, err)
			continue
		}
		if ie.File != file || ie.Hint == "" || !strings.Contains(ie.Msg, tc.msg) {
			t.Errorf("Parse(%s) = %+v, want file %q, a hint and mention of %q", name, ie, file, tc.msg)
		}
		if !strings.HasPrefix(ie.Error(), file+": ") {
			t.Errorf("Parse(%s).Error() = %q, want prefix %q", name, ie.Error(), file+": ")
		}
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"7d":      7 * 24 * time.Hour,
		"24h":     24 * time.Hour,
		"1d12h":   36 * time.Hour,
		"90m":     90 * time.Minute,
		"30s":     30 * time.Second,
		"0d":      0,
		"1d30m":   24*time.Hour + 30*time.Minute,
		"2d1h30m": 49*time.Hour + 30*time.Minute,
		"1h30m":   90 * time.Minute,
		"365d":    365 * 24 * time.Hour,
	} {
		got, err := policy.ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "x", "7", "1dd", "d1h", "1.5d", "1d2d", "1dx", "1w", "7 d", "abc"} {
		if got, err := policy.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, nil, want error", s, got)
		}
	}
}

// A count of days too large for a time.Duration must be an error, as
// time.ParseDuration makes it for hours; it must never wrap around to a
// small or negative duration. The schema's duration pattern allows any
// number of digits, so such values reach ParseDuration from policy.yaml.
func TestParseDurationOverflow(t *testing.T) {
	for _, s := range []string{
		"106752d",              // just over math.MaxInt64 nanoseconds
		"213504d",              // wraps to about 25 minutes
		"106751d24h",           // the sum overflows
		"99999999999999999d",   // the multiplication overflows many times
		"9223372036854775807d", // largest int
	} {
		got, err := policy.ParseDuration(s)
		if err == nil && got < 106751*24*time.Hour {
			t.Errorf("ParseDuration(%q) = %v, nil, want an overflow error", s, got)
		}
	}
	if _, err := policy.ParseDuration("2562047h"); err != nil {
		t.Errorf("ParseDuration(2562047h) = %v, want nil error", err)
	}
	if d, err := policy.ParseDuration("36500d"); err != nil || d != 36500*24*time.Hour {
		t.Errorf("ParseDuration(36500d) = %v, %v, want %v", d, err, 36500*24*time.Hour)
	}
}

// Through policy.yaml, a wrapped-around max_ttl turns an absurd lifetime into
// a 25-minute one without an error.
func TestParseRejectsOverflowingTTL(t *testing.T) {
	data := minimal + "gates:\n  intent: {default_ttl: 10m, max_ttl: 213504d}\n"
	p, err := policy.Parse(file, []byte(data))
	if err == nil {
		d, _ := policy.ParseDuration(p.Gates.Intent.MaxTTL)
		t.Errorf("Parse(max_ttl: 213504d) = max_ttl of %v, nil error, want an error", d)
	}
}

func FuzzParse(f *testing.F) {
	tmpl := policy.Template("local", "dev", "")
	f.Add(tmpl)
	f.Add(policy.Template("s3", "prod", ""))
	f.Add([]byte(minimal))
	f.Add([]byte(""))
	f.Add([]byte("---\n"))
	f.Add(tmpl[:len(tmpl)/2])
	f.Add(bytes.Replace(tmpl, []byte("approvals: 1"), []byte("aprovals: 1"), 1))
	f.Add(bytes.Replace(tmpl, []byte("require_tag: false"), []byte(`require_tag: "yes"`), 1))
	f.Add(bytes.Replace(tmpl, []byte("tags: {}"), []byte(`tags: {owner: "[a-"}`), 1))
	f.Add(bytes.Replace(tmpl, []byte("kind: local"), []byte("kind: &k local"), 1))
	f.Add(append(append([]byte(nil), tmpl...), "---\nversion: 1\n"...))
	f.Add([]byte(minimal + "  - name: prod\n"))
	f.Add([]byte(minimal + "gates:\n  intent: {default_ttl: 4d, max_ttl: 1d12h}\n  checkpoint: {max_age: 30d}\n"))
	f.Add([]byte(minimal + "gates:\n  approvals:\n    apply: {count: 2, roles: [approver]}\n"))
	f.Add([]byte("version: 1\nbackend:\n  <<: {kind: s3}\nenvironments: [{name: dev}]\n"))
	f.Add([]byte("version: 1\nbackend: {kind: s3}\nenvironments: [{name: !!binary ZGV2}]\n"))
	f.Add([]byte("\tversion: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(file, data)
		if err != nil {
			var se *strictyaml.Error
			var ie *policy.InvalidError
			if !errors.As(err, &se) && !errors.As(err, &ie) {
				t.Fatalf("Parse(%q) error = %T %v, want *strictyaml.Error or *policy.InvalidError", data, err, err)
			}
			return
		}
		// Defaults are always applied on success.
		if p.Evidence.Store == "" || p.Evidence.RetentionDays == 0 || p.Gates.Manifest.Approvals == 0 {
			t.Fatalf("Parse(%q) left defaults unset: %+v", data, p)
		}
		for _, a := range policy.Actions {
			if _, ok := p.Gates.Approvals[a]; !ok {
				t.Fatalf("Parse(%q) has no approval rule for %s", data, a)
			}
		}
		if len(p.Environments) == 0 {
			t.Fatalf("Parse(%q) accepted a policy without environments", data)
		}
	})
}

// Without an evidence store, init's policy is demo-grade with a local trail;
// with one, it names the store and the environment is not demo-grade.
func TestTemplateEvidence(t *testing.T) {
	demo := mustParse(t, string(policy.Template("local", "dev", "")))
	if !demo.Evidence.Local() || !demo.Environment("dev").Demo {
		t.Errorf("Parse(Template(local, dev, \"\")) = store %q, demo %v, want a local store and a demo-grade environment", demo.Evidence.Store, demo.Environment("dev").Demo)
	}
	const store = "s3://evidence/trail?endpoint=http://127.0.0.1:9000&path_style=true"
	real := mustParse(t, string(policy.Template("s3", "prod", store)))
	if real.Evidence.Store != store || real.Evidence.Local() || real.Environment("prod").Demo {
		t.Errorf("Parse(Template(s3, prod, %q)) = store %q, demo %v, want that store and no demo", store, real.Evidence.Store, real.Environment("prod").Demo)
	}
}

// A waiver names a known capability and gives a reason.
func TestEvidenceWaiver(t *testing.T) {
	base := "version: 1\nbackend: {kind: s3}\nenvironments: [{name: prod}]\nevidence:\n  store: s3://b/p\n"
	p := mustParse(t, base+"  waive:\n    - capability: object_lock\n      reason: the vendor has no object lock yet (RISK-12)\n")
	if w := p.Evidence.Waives(policy.CapObjectLock); w == nil || !strings.Contains(w.Reason, "RISK-12") {
		t.Errorf("Waives(object_lock) = %+v, want the waiver", w)
	}
	for _, bad := range []string{
		"  waive:\n    - capability: object_lock\n",
		"  waive:\n    - capability: versioning\n      reason: not needed here at all\n",
		"  waive: [object_lock]\n",
	} {
		if _, err := policy.Parse("policy.yaml", []byte(base+bad)); err == nil {
			t.Errorf("Parse(waiver %q) = nil error, want it refused", bad)
		}
	}
}
