package evidence

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/evidence"
)

// Event is one event of the report's timeline.
type Event struct {
	Time    string
	Kind    string // bootstrap, apply, break-glass, drill
	Seq     int64
	Actor   string
	Action  string
	Subject string
	OK      string // "ok", "failed" or ""
}

// Window is a break-glass window: opened, then closed or lapsed.
type Window struct {
	Subject string
	Opened  string
	Ended   string // "" while open
	How     string // closed, lapsed or open
}

// Breakglass actions of the trail.
const (
	ActionBreakGlassActive = "BREAK_GLASS_ACTIVE"
	ActionBreakGlassClosed = "BREAK_GLASS_CLOSED"
	ActionBreakGlassLapsed = "BREAK_GLASS_LAPSED"
)

// eventKind classifies an entry for the timeline, or "".
func eventKind(e *audit.Entry) string {
	a := e.Action
	switch {
	case a == ActionBreakGlassActive || a == ActionBreakGlassClosed || a == ActionBreakGlassLapsed || strings.HasPrefix(a, "breakglass"):
		return "break-glass"
	case strings.HasPrefix(a, "drill"):
		return "drill"
	case strings.HasPrefix(a, "bootstrap.") || a == "backend.create" || a == "backend.migrate":
		return "bootstrap"
	case a == "apply.result" || a == "apply.abort" || a == "apply.refused":
		return "apply"
	}
	return ""
}

// Timeline returns the bundle's events in the period of its index, and the
// break-glass windows.
func Timeline(b *evidence.Bundle, ix *evidence.Index) ([]Event, []Window) {
	var events []Event
	var windows []Window
	open := map[string]int{}
	for _, line := range bytes.Split(b.Files[evidence.EntriesFile], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		_, _, t, ok := audit.EntryFields(line)
		if !ok || (ix.Since != "" && t < ix.Since) || (ix.Until != "" && t > ix.Until) {
			continue
		}
		e, err := audit.ParseEntry(line)
		if err != nil {
			continue
		}
		kind := eventKind(e)
		if kind == "" {
			continue
		}
		ev := Event{Time: e.Time, Kind: kind, Seq: e.Seq, Actor: e.Actor, Action: e.Action, Subject: e.Subject}
		if ok, has := e.Details["ok"].(bool); has {
			ev.OK = map[bool]string{true: "ok", false: "failed"}[ok]
		}
		if kind == "bootstrap" || kind == "apply" {
			if env, _ := e.Details["env"].(string); env != "" {
				ev.Subject += " (" + env + ")"
			}
		}
		events = append(events, ev)
		switch e.Action {
		case ActionBreakGlassActive:
			open[e.Subject] = len(windows)
			windows = append(windows, Window{Subject: e.Subject, Opened: e.Time, How: "open"})
		case ActionBreakGlassClosed, ActionBreakGlassLapsed:
			how := "closed"
			if e.Action == ActionBreakGlassLapsed {
				how = "lapsed"
			}
			if i, ok := open[e.Subject]; ok {
				windows[i].Ended, windows[i].How = e.Time, how
				delete(open, e.Subject)
			} else {
				windows = append(windows, Window{Subject: e.Subject, Ended: e.Time, How: how})
			}
		}
	}
	return events, windows
}

// Coverage is one row of the control coverage matrix.
type Coverage struct {
	Framework string
	ID        string
	Title     string
	Classes   []string // classes in the bundle that evidence it
	Files     int
}

// CoverageMatrix says, for every control of the mapping, which files of the
// index evidence it.
func CoverageMatrix(m *Mapping, ix *evidence.Index) []Coverage {
	var out []Coverage
	for _, f := range m.Frameworks {
		for _, c := range f.Controls {
			row := Coverage{Framework: f.Prefix, ID: c.ID, Title: c.Title}
			seen := map[string]bool{}
			for _, file := range ix.Files {
				for _, k := range file.Controls {
					if k == c.Key {
						row.Files++
						if !seen[file.Class] {
							seen[file.Class] = true
							row.Classes = append(row.Classes, file.Class)
						}
					}
				}
			}
			sort.Strings(row.Classes)
			out = append(out, row)
		}
	}
	return out
}

// SignerRow describes a signer for the report.
type SignerRow struct {
	ID, Roles, Status, Keys string
}

type reportData struct {
	Rep      *Report
	OK       bool
	Status   string
	Events   []Event
	Windows  []Window
	Matrix   []Coverage
	Covered  int
	Signers  []SignerRow
	Counts   map[string]int
	Classes  []string
	Problems []evidence.Problem
	Checked  string
}

// CSP forbids every external resource, and every script, in the report.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'"

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="` + CSP + `">
<meta name="referrer" content="no-referrer">
<title>groundzero evidence report</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1b1f23;background:#fff}
h1{font-size:1.6em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:.9em ui-monospace,monospace}
.status{padding:.8em 1em;border-radius:6px;font-weight:600;font-size:1.1em}
.ok{background:#dafbe1;color:#116329;border:1px solid #4ac26b}.bad{background:#ffebe9;color:#82071e;border:1px solid #ff8182}
.yes{background:#dafbe1}.no{background:#fff8c5}.muted{color:#57606a}
</style>
</head>
<body>
<h1>groundzero evidence report</h1>
<p class="muted">Trail <code>{{.Rep.Index.Origin}}</code> from <code>{{.Rep.Index.Store}}</code>, exported {{.Rep.Index.Created}} by {{.Rep.Index.Exporter}}; period {{if .Rep.Index.Since}}{{.Rep.Index.Since}}{{else}}the beginning{{end}} to {{if .Rep.Index.Until}}{{.Rep.Index.Until}}{{else}}the export{{end}}. Verified {{.Checked}}.</p>
<h2>Verification</h2>
<p class="status {{if .OK}}ok{{else}}bad{{end}}">{{.Status}}</p>
<ul>
<li>{{len .Rep.Index.Files}} files checked against the signed index (SHA-256)</li>
<li>index signed by {{range $i, $s := .Rep.IndexSigners}}{{if $i}}, {{end}}{{$s}}{{else}}nobody valid{{end}}</li>
<li>signers registry version {{.Rep.RegistryVersion}} (<code>{{.Rep.RegistryHash}}</code>), {{if .Rep.Pinned}}anchored by the trust-root pin{{else}}trust on first use: no pin given{{end}}</li>
{{with .Rep.Trail}}<li>{{.Entries}} audit entries: hash chain and Merkle tree recomputed; {{.CheckpointsValid}} checkpoint(s) valid{{with .Latest}}, the newest of size {{.Size}} signed by {{range $i, $s := .Signers}}{{if $i}}, {{end}}{{$s}}{{end}}{{end}}</li>{{end}}
<li>{{len .Rep.Records}} signed record(s) checked</li>
<li>evidence store retention: {{.Rep.Index.RetentionDays}} days, {{if .Rep.Index.WORM}}WORM (Object Lock){{else}}not WORM{{end}}</li>
</ul>
{{if .Problems}}<table><tr><th>file</th><th>problem</th></tr>{{range .Problems}}<tr><td><code>{{.Path}}</code></td><td>{{.Reason}}</td></tr>{{end}}</table>{{end}}
<h2>Timeline</h2>
{{if .Events}}<table><tr><th>time</th><th>what</th><th>action</th><th>subject</th><th>actor</th><th>result</th><th>seq</th></tr>
{{range .Events}}<tr><td>{{.Time}}</td><td>{{.Kind}}</td><td><code>{{.Action}}</code></td><td>{{.Subject}}</td><td>{{.Actor}}</td><td>{{.OK}}</td><td>{{.Seq}}</td></tr>
{{end}}</table>{{else}}<p>No bootstraps, applies, break-glass windows or drills in the period.</p>{{end}}
<h2>Break-glass windows</h2>
{{if .Windows}}<table><tr><th>subject</th><th>opened</th><th>ended</th><th>how</th></tr>
{{range .Windows}}<tr><td>{{.Subject}}</td><td>{{.Opened}}</td><td>{{.Ended}}</td><td>{{.How}}</td></tr>{{end}}</table>{{else}}<p>No break-glass window in the period.</p>{{end}}
<h2>Control coverage</h2>
<p>{{.Covered}} of {{len .Matrix}} controls have evidence in this bundle.</p>
<table><tr><th>framework</th><th>control</th><th>evidence</th><th>files</th></tr>
{{range .Matrix}}<tr class="{{if .Classes}}yes{{else}}no{{end}}"><td>{{.Framework}}</td><td>{{.ID}} {{.Title}}</td><td>{{range $i, $c := .Classes}}{{if $i}}, {{end}}{{$c}}{{else}}no evidence{{end}}</td><td>{{.Files}}</td></tr>
{{end}}</table>
<h2>Signers</h2>
<table><tr><th>id</th><th>roles</th><th>status</th><th>keys</th></tr>
{{range .Signers}}<tr><td>{{.ID}}</td><td>{{.Roles}}</td><td>{{.Status}}</td><td><code>{{.Keys}}</code></td></tr>{{end}}</table>
<h2>Contents</h2>
<table><tr><th>class</th><th>files</th></tr>{{range .Classes}}<tr><td>{{.}}</td><td>{{index $.Counts .}}</td></tr>{{end}}</table>
</body>
</html>
`))

// Render writes the auditor's report on a verified bundle: one
// self-contained HTML page, with no script and no external resource.
func Render(w io.Writer, rep *Report, m *Mapping, checked string) error {
	if rep.Index == nil {
		return fmt.Errorf("%s is unreadable: nothing to report", evidence.IndexFile)
	}
	d := reportData{Rep: rep, OK: rep.OK(), Problems: rep.Problems, Counts: map[string]int{}, Checked: checked}
	if d.OK {
		d.Status = fmt.Sprintf("VERIFIED: %d files, %d audit entries, signatures valid", len(rep.Index.Files), rep.Index.Entries)
	} else {
		d.Status = fmt.Sprintf("NOT VERIFIED: %d problem(s)", len(rep.Problems))
	}
	d.Events, d.Windows = Timeline(rep.Bundle, rep.Index)
	d.Matrix = CoverageMatrix(m, rep.Index)
	for _, row := range d.Matrix {
		if len(row.Classes) > 0 {
			d.Covered++
		}
	}
	if rep.Registry != nil {
		now := rep.checkedAt
		for _, s := range rep.Registry.Signers {
			var keys []string
			for _, k := range s.PublicKeys() {
				if k != nil {
					keys = append(keys, k.Summary())
				}
			}
			d.Signers = append(d.Signers, SignerRow{ID: s.ID, Roles: strings.Join(s.Roles, ", "), Status: s.Status(now), Keys: strings.Join(keys, "; ")})
		}
	}
	for _, f := range rep.Index.Files {
		if d.Counts[f.Class] == 0 {
			d.Classes = append(d.Classes, f.Class)
		}
		d.Counts[f.Class]++
	}
	sort.Strings(d.Classes)
	return reportTemplate.Execute(w, d)
}
