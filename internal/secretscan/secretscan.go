// Package secretscan finds credentials in the governed files of a
// repository: cloud access keys, private keys and tokens, and literal values
// assigned to names such as password, secret or token. Secrets belong in a
// secret store (Vault, a cloud secret manager, the CI system's secrets); a
// governed file only refers to them.
//
// A Finding names the file, the line and the rule, and never the secret:
// no matched byte leaves ScanBytes, so findings can be printed, written to
// the audit trail and uploaded as SARIF without repeating what they found
// (T26).
//
// # Rules
//
// Rules is a table modelled on gitleaks' default rule set, with the same
// rule IDs where the credential is the same. gitleaks itself (v8.30.1) was
// not imported: it brings 55 modules into the binary (archive decoders for
// 7z, rar, xz, lz4, brotli; viper, a terminal styling library), logs
// through a process-wide zerolog logger on stderr, and its findings carry
// the secret, the match and the whole line, which this package must never
// hold past the match. Each rule has a keyword pre-filter, a pattern (Go
// RE2: linear in the input, whatever it holds), an optional minimum
// entropy of the secret, and an optional filter for known non-secrets
// (documentation examples, references to a secret store, expressions).
//
// There is no inline "allow" comment. A finding is accepted only by a
// waiver in governance/policy.yaml that names its rule and file (and
// optionally its line) with a reason, which review approves like any other
// policy change.
//
// # What is scanned
//
// Text files only: a file with a NUL byte in its first 8 KiB is binary, and
// only its name is judged (key stores such as .p12 or .jks). A file larger
// than MaxFileSize is an error, not a pass.
package secretscan

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/groundzero/groundzero/internal/repo"
)

// MaxFileSize bounds one scanned file.
const MaxFileSize = repo.MaxFileSize

// Finding is one credential found: where, and by which rule. It holds no
// byte of the secret.
type Finding struct {
	Path        string `json:"path"`           // repository-relative, slash-separated
	Line        int    `json:"line,omitempty"` // 1-based; 0 when the file's name is the finding
	Rule        string `json:"rule"`
	Description string `json:"description"`
}

func (f Finding) String() string {
	if f.Line == 0 {
		return fmt.Sprintf("%s: %s (%s)", f.Path, f.Rule, f.Description)
	}
	return fmt.Sprintf("%s:%d: %s (%s)", f.Path, f.Line, f.Rule, f.Description)
}

// binarySniff is how much of a file is looked at for a NUL byte.
const binarySniff = 8 << 10

// ScanBytes returns the findings in one file's content, sorted by line and
// rule, at most one per rule and line. name is the file's repository path;
// it decides name-based rules and how values are read (HCL literals are
// quoted).
func ScanBytes(name string, data []byte) []Finding {
	var out []Finding
	base := path.Base(name)
	for i := range Rules {
		r := &Rules[i]
		if r.Files != nil && r.Files(base) {
			out = append(out, Finding{Path: name, Rule: r.ID, Description: r.Description})
		}
	}
	if bytes.IndexByte(data[:min(len(data), binarySniff)], 0) >= 0 {
		return out
	}
	lower := asciiLower(data)
	lines := lineIndex{data: data}
	seen := map[[2]int]bool{} // rule index, line
	for i := range Rules {
		r := &Rules[i]
		if r.Pattern == nil {
			continue
		}
		var spans [][2]int
		if r.Multiline || len(r.Keywords) == 0 {
			if !containsAny(lower, r.Keywords) {
				continue
			}
			spans = [][2]int{{0, len(data)}}
		} else {
			spans = keywordLines(lower, r.Keywords)
		}
		for _, sp := range spans {
			for _, loc := range r.Pattern.FindAllSubmatchIndex(data[sp[0]:sp[1]], -1) {
				if loc[2*r.Group] < 0 {
					continue
				}
				m := make([][]byte, len(loc)/2)
				for g := range m {
					if loc[2*g] >= 0 {
						m[g] = data[sp[0]+loc[2*g] : sp[0]+loc[2*g+1]]
					}
				}
				if r.Entropy > 0 && entropy(m[r.Group]) < r.Entropy {
					continue
				}
				if r.Accept != nil && !r.Accept(m, name) {
					continue
				}
				line := lines.at(sp[0] + loc[2*r.Group])
				if seen[[2]int{i, line}] {
					continue
				}
				seen[[2]int{i, line}] = true
				out = append(out, Finding{Path: name, Line: line, Rule: r.ID, Description: r.Description})
			}
		}
	}
	out = dropFallbacks(out)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// dropFallbacks removes the findings of fallback rules on lines where
// another rule found something.
func dropFallbacks(fs []Finding) []Finding {
	specific := map[int]bool{}
	for _, f := range fs {
		if f.Line > 0 && !Lookup(f.Rule).Fallback {
			specific[f.Line] = true
		}
	}
	out := fs[:0]
	for _, f := range fs {
		if !(specific[f.Line] && Lookup(f.Rule).Fallback) {
			out = append(out, f)
		}
	}
	return out
}

// keywordLines returns the spans of the lines of lower that hold one of the
// keywords, in order, each once. A keyword never spans a line, so the
// pattern of a single-line rule can only match inside these spans.
func keywordLines(lower []byte, keywords []string) [][2]int {
	var spans [][2]int
	for _, k := range keywords {
		for from := 0; from < len(lower); {
			j := bytes.Index(lower[from:], []byte(k))
			if j < 0 {
				break
			}
			at := from + j
			start := bytes.LastIndexByte(lower[:at], '\n') + 1
			end := len(lower)
			if e := bytes.IndexByte(lower[at:], '\n'); e >= 0 {
				end = at + e
			}
			spans = append(spans, [2]int{start, end})
			from = end + 1
		}
	}
	if len(keywords) > 1 {
		sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
		spans = slices.Compact(spans)
	}
	return spans
}

func containsAny(lower []byte, keywords []string) bool {
	for _, k := range keywords {
		if bytes.Contains(lower, []byte(k)) {
			return true
		}
	}
	return len(keywords) == 0
}

// entropy is the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	var h float64
	n := float64(len(b))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// lineIndex maps byte offsets to 1-based line numbers, counting newlines
// once for the whole file on first use.
type lineIndex struct {
	data   []byte
	starts []int
}

func (l *lineIndex) at(off int) int {
	if l.starts == nil {
		l.starts = []int{0}
		for i, c := range l.data {
			if c == '\n' {
				l.starts = append(l.starts, i+1)
			}
		}
	}
	return sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off })
}

// FileError reports a file that could not be scanned. It names the file
// and the reason, never its content.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": cannot be scanned: " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Workers is the number of files scanned at once; GOMAXPROCS by default.
var Workers = runtime.GOMAXPROCS(0)

// Scan reads the named repository files (through repo's checks: no
// symbolic links, bounded size) and returns every finding, sorted by path
// and line. The first file that cannot be read stops the scan with a
// *FileError.
func Scan(ctx context.Context, r *repo.Repo, paths []string) ([]Finding, error) {
	results := make([][]Finding, len(paths))
	errs := make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(Workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := r.ReadFile(paths[i], MaxFileSize)
				if err != nil {
					errs[i] = &FileError{Path: paths[i], Err: err}
					continue
				}
				results[i] = ScanBytes(paths[i], data)
			}
		}()
	}
	for i := range paths {
		if err := ctx.Err(); err != nil {
			close(next)
			wg.Wait()
			return nil, err
		}
		next <- i
	}
	close(next)
	wg.Wait()
	var out []Finding
	for i := range paths {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, results[i]...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}

// Waiver accepts the findings of one rule in one file (on one line, when
// Line is not 0).
type Waiver struct {
	Rule string
	Path string
	Line int
}

func (w Waiver) String() string {
	if w.Line == 0 {
		return fmt.Sprintf("%s in %s", w.Rule, w.Path)
	}
	return fmt.Sprintf("%s in %s:%d", w.Rule, w.Path, w.Line)
}

func (w Waiver) covers(f Finding) bool {
	return w.Rule == f.Rule && w.Path == f.Path && (w.Line == 0 || w.Line == f.Line)
}

// Waive splits findings into those no waiver covers and those one does, and
// returns the waivers that covered nothing (stale ones, to be removed).
func Waive(findings []Finding, waivers []Waiver) (kept, waived []Finding, unused []Waiver) {
	used := make([]bool, len(waivers))
	for _, f := range findings {
		hit := false
		for i, w := range waivers {
			if w.covers(f) {
				used[i], hit = true, true
			}
		}
		if hit {
			waived = append(waived, f)
		} else {
			kept = append(kept, f)
		}
	}
	for i, w := range waivers {
		if !used[i] {
			unused = append(unused, w)
		}
	}
	return kept, waived, unused
}

// RuleIDs returns the ID of every rule, in table order.
func RuleIDs() []string {
	ids := make([]string, len(Rules))
	for i, r := range Rules {
		ids[i] = r.ID
	}
	return ids
}

// Lookup returns the rule with the given ID, or nil.
func Lookup(id string) *Rule {
	for i := range Rules {
		if Rules[i].ID == id {
			return &Rules[i]
		}
	}
	return nil
}

// asciiLower lowers A–Z only, so that offsets in the result are offsets in
// data: bytes.ToLower rewrites invalid UTF-8, which can change the length.
func asciiLower(data []byte) []byte {
	out := make([]byte, len(data))
	for i, c := range data {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
