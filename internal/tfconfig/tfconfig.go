// Package tfconfig finds what an OpenTofu configuration reaches: the module
// calls of a root module and, through local sources, of every module it calls
// (T29). CheckModules then decides whether each is governed.
//
// Files are read as OpenTofu 1.12 reads a module directory: *.tf, *.tf.json,
// *.tofu and *.tofu.json, skipping hidden (".x"), editor ("x~", "#x#") and
// test files; override files (override.tf, x_override.tf and their .tf.json,
// .tofu, .tofu.json forms) set the source or version of a module block of the
// same name, last file last; and where x.tofu and x.tf (or their .json forms)
// both exist, OpenTofu reads only x.tofu. Terraform reads no .tofu file, so a
// directory is read both ways and the calls of both are reported: the engine
// may be either.
//
// A module's source and version must be literal strings: OpenTofu 1.8+
// accepts variables there, which would make what is reached depend on input
// that is not governed. Every read is bounded (MaxDepth, MaxFiles,
// MaxFileSize, MaxDirEntries, MaxCalls).
package tfconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Bounds on what Modules reads.
const (
	MaxDepth      = 32      // nested local module calls
	MaxFiles      = 2000    // configuration files, over all directories
	MaxFileSize   = 4 << 20 // bytes per configuration file
	MaxDirEntries = 10_000  // entries per module directory
	MaxCalls      = 10_000  // module calls, over all directories
)

// ModuleCall is one module block, with override files applied.
type ModuleCall struct {
	Name    string // the block's label
	Source  string // the source argument
	Version string // the version argument, "" when absent
	// Range is the module block whose source takes effect: the block
	// itself, or the override block that replaced its source.
	Range hcl.Range
	// VersionRange is the version argument that takes effect (the block's,
	// or an override's); zero when there is no version.
	VersionRange hcl.Range
	// Dir is the directory a local source ("./", "../") names, joined to the
	// calling module's directory as OpenTofu joins it (lexically, without
	// resolving symbolic links); "" for other sources.
	Dir string
}

// Local reports whether the source is a local path, which OpenTofu reads in
// place rather than installing.
func (c *ModuleCall) Local() bool { return isLocal(c.Source) }

func isLocal(s string) bool {
	for _, p := range []string{"./", "../", ".\\", "..\\"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func at(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// SyntaxError reports a configuration file that does not parse.
type SyntaxError struct {
	Diags hcl.Diagnostics
}

func (e *SyntaxError) Error() string {
	return e.Diags.Error() + ": fix the configuration's syntax"
}

// NotLiteralError refuses a module source or version that is not a literal
// string.
type NotLiteralError struct {
	Range  hcl.Range
	Module string
	Attr   string // "source" or "version"
}

func (e *NotLiteralError) Error() string {
	return fmt.Sprintf("%s: module %q: %s is not a literal string: write the %s out as a quoted string, without variables, functions or references",
		at(e.Range), e.Module, e.Attr, e.Attr)
}

// MissingSourceError reports a module block without a source.
type MissingSourceError struct {
	Range  hcl.Range
	Module string
}

func (e *MissingSourceError) Error() string {
	return fmt.Sprintf("%s: module %q has no source: add a source argument", at(e.Range), e.Module)
}

// DuplicateModuleError reports two module blocks of one name in the primary
// (non-override) files of one directory.
type DuplicateModuleError struct {
	Module        string
	First, Second hcl.Range
}

func (e *DuplicateModuleError) Error() string {
	return fmt.Sprintf("%s: module %q is already declared at %s: rename or remove one", at(e.Second), e.Module, at(e.First))
}

// ModuleDirError reports a local module whose directory cannot be read.
type ModuleDirError struct {
	Range  hcl.Range
	Module string
	Dir    string
	Err    error
}

func (e *ModuleDirError) Error() string {
	return fmt.Sprintf("%s: module %q: directory %s cannot be read (%v): fix the source", at(e.Range), e.Module, e.Dir, e.Err)
}

func (e *ModuleDirError) Unwrap() error { return e.Err }

// CycleError reports local module calls that lead back to a directory already
// being read.
type CycleError struct {
	Chain []hcl.Range // the calls, from the first one into the cycle to the one that closes it
}

func (e *CycleError) Error() string {
	parts := make([]string, len(e.Chain))
	for i, r := range e.Chain {
		parts[i] = at(r)
	}
	return "module calls form a cycle: " + strings.Join(parts, " -> ") + ": break the cycle"
}

// LimitError reports input beyond one of the bounds.
type LimitError struct {
	What  string // "depth", "files", "file size", "directory entries", "calls"
	Limit int64
	Path  string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: more than %d %s: split or simplify the configuration", e.Path, e.Limit, e.What)
}

// Modules parses the configuration in directory root and follows its module
// calls through local sources, transitively. It returns every call, ordered
// by file and line, each directory's calls once however often the directory
// is called.
func Modules(root string) ([]ModuleCall, error) {
	w := &walker{
		parser:  hclparse.NewParser(),
		entered: map[string]int{},
		done:    map[string]bool{},
		seen:    map[string]bool{},
	}
	if err := w.walk(root, nil, nil); err != nil {
		return nil, err
	}
	sort.SliceStable(w.calls, func(i, j int) bool {
		a, b := w.calls[i].Range, w.calls[j].Range
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return w.calls, nil
}

type walker struct {
	parser  *hclparse.Parser
	files   int
	entered map[string]int  // resolved directory being read -> depth of the call that entered it
	done    map[string]bool // resolved directories read
	seen    map[string]bool // calls already reported
	calls   []ModuleCall
}

// walk reads dir, reached through the calls on stack (via is the last one,
// nil for the root).
func (w *walker) walk(dir string, stack []hcl.Range, via *ModuleCall) error {
	ioErr := func(err error) error {
		if via == nil {
			return fmt.Errorf("reading the configuration in %s: %w", dir, err)
		}
		return &ModuleDirError{Range: via.Range, Module: via.Name, Dir: dir, Err: err}
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ioErr(err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return ioErr(err)
	}
	if w.done[real] {
		return nil
	}
	if i, ok := w.entered[real]; ok {
		return &CycleError{Chain: slices.Clone(stack[i:])}
	}
	if len(stack) > MaxDepth {
		return &LimitError{What: "nested module calls", Limit: MaxDepth, Path: dir}
	}
	w.entered[real] = len(stack)
	tofu, terraform, err := w.views(dir)
	if err != nil {
		return ioErr(err)
	}
	var calls []ModuleCall
	for _, files := range [][]configFile{tofu, terraform} {
		cs, err := w.calls1(dir, files)
		if err != nil {
			return err
		}
		calls = append(calls, cs...)
	}
	for _, c := range calls {
		key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%s\x00%d", c.Name, c.Source, c.Version,
			c.Range.Filename, c.Range.Start.Byte, c.VersionRange.Filename, c.VersionRange.Start.Byte)
		if w.seen[key] {
			continue
		}
		w.seen[key] = true
		if len(w.calls) >= MaxCalls {
			return &LimitError{What: "module calls", Limit: MaxCalls, Path: dir}
		}
		w.calls = append(w.calls, c)
		if c.Dir != "" {
			if err := w.walk(c.Dir, append(slices.Clip(stack), c.Range), &c); err != nil {
				return err
			}
		}
	}
	delete(w.entered, real)
	w.done[real] = true
	return nil
}

type configFile struct {
	path     string
	override bool
}

// Configuration file extensions, longest first.
var exts = []string{".tofu.json", ".tf.json", ".tofu", ".tf"}

func configExt(name string) string {
	for _, e := range exts {
		if strings.HasSuffix(name, e) {
			return e
		}
	}
	return ""
}

func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		(strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"))
}

// views lists the configuration files of dir as OpenTofu reads them and as
// Terraform does, in name order.
func (w *walker) views(dir string) (tofu, terraform []configFile, err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	ents, err := d.ReadDir(MaxDirEntries + 1)
	d.Close()
	if err != nil && err != io.EOF {
		return nil, nil, err
	}
	if len(ents) > MaxDirEntries {
		return nil, nil, &LimitError{What: "directory entries", Limit: MaxDirEntries, Path: dir}
	}
	names := map[string]bool{}
	var all []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || ignored(n) || configExt(n) == "" {
			continue
		}
		names[n] = true
		all = append(all, n)
	}
	sort.Strings(all)
	for _, n := range all {
		ext := configExt(n)
		base := strings.TrimSuffix(n, ext)
		f := configFile{path: filepath.Join(dir, n), override: base == "override" || strings.HasSuffix(base, "_override")}
		switch ext {
		case ".tf", ".tf.json":
			terraform = append(terraform, f)
			// OpenTofu prefers x.tofu to x.tf, x.tofu.json to x.tf.json.
			if !names[base+strings.Replace(ext, ".tf", ".tofu", 1)] {
				tofu = append(tofu, f)
			}
		default:
			tofu = append(tofu, f)
		}
	}
	return tofu, terraform, nil
}

// parse reads and parses one file once.
func (w *walker) parse(p string) (*hcl.File, error) {
	if f := w.parser.Files()[p]; f != nil {
		return f, nil
	}
	w.files++
	if w.files > MaxFiles {
		return nil, &LimitError{What: "configuration files", Limit: MaxFiles, Path: p}
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	src, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if len(src) > MaxFileSize {
		return nil, &LimitError{What: "bytes", Limit: MaxFileSize, Path: p}
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(p, ".json") {
		f, diags = w.parser.ParseJSON(src, p)
	} else {
		f, diags = w.parser.ParseHCL(src, p)
	}
	if diags.HasErrors() {
		return nil, &SyntaxError{Diags: diags}
	}
	return f, nil
}

var (
	fileSchema   = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "module", LabelNames: []string{"name"}}}}
	moduleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source"}, {Name: "version"}}}
)

// calls1 returns the module calls that one view of dir makes, overrides
// applied.
func (w *walker) calls1(dir string, files []configFile) ([]ModuleCall, error) {
	byName := map[string]*ModuleCall{}
	declared := map[string]hcl.Range{}
	var order []string
	for _, override := range []bool{false, true} {
		for _, cf := range files {
			if cf.override != override {
				continue
			}
			f, err := w.parse(cf.path)
			if err != nil {
				return nil, err
			}
			content, _, diags := f.Body.PartialContent(fileSchema)
			if diags.HasErrors() {
				return nil, &SyntaxError{Diags: diags}
			}
			for _, b := range content.Blocks {
				name := b.Labels[0]
				if !hclsyntax.ValidIdentifier(name) {
					// OpenTofu refuses such a name too; a JSON file can
					// spell one that HCL cannot.
					return nil, &SyntaxError{Diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid module name",
						Detail: fmt.Sprintf("module name %q is not a valid identifier", name), Subject: b.DefRange.Ptr()}}}
				}
				attrs, _, diags := b.Body.PartialContent(moduleSchema)
				if diags.HasErrors() {
					return nil, &SyntaxError{Diags: diags}
				}
				c := byName[name]
				if !override {
					if first, dup := declared[name]; dup {
						return nil, &DuplicateModuleError{Module: name, First: first, Second: b.DefRange}
					}
					declared[name] = b.DefRange
				}
				if c == nil {
					// An override without a base block is still read: it is
					// refused by OpenTofu, and checked here.
					c = &ModuleCall{Name: name, Range: b.DefRange}
					byName[name] = c
					order = append(order, name)
				}
				if a := attrs.Attributes["source"]; a != nil {
					s, err := literal(a, name)
					if err != nil {
						return nil, err
					}
					c.Source, c.Range = s, b.DefRange
				} else if !override {
					return nil, &MissingSourceError{Range: b.DefRange, Module: name}
				}
				if a := attrs.Attributes["version"]; a != nil {
					s, err := literal(a, name)
					if err != nil {
						return nil, err
					}
					c.Version, c.VersionRange = s, a.Range
				}
			}
		}
	}
	out := make([]ModuleCall, 0, len(order))
	for _, name := range order {
		c := *byName[name]
		if c.Source == "" {
			return nil, &MissingSourceError{Range: c.Range, Module: name}
		}
		if isLocal(c.Source) {
			c.Dir = filepath.Join(dir, filepath.FromSlash(c.Source))
		}
		out = append(out, c)
	}
	return out, nil
}

// literal returns the value of an attribute that must be a literal string:
// it evaluates without variables or functions to a known, non-null string.
func literal(a *hcl.Attribute, module string) (string, error) {
	if len(a.Expr.Variables()) > 0 {
		return "", &NotLiteralError{Range: a.Range, Module: module, Attr: a.Name}
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() || !v.Type().Equals(cty.String) {
		return "", &NotLiteralError{Range: a.Range, Module: module, Attr: a.Name}
	}
	return v.AsString(), nil
}
