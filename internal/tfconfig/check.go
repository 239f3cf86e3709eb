package tfconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// MaxModuleFiles bounds the entries CheckModules walks in one local module
// directory.
const MaxModuleFiles = 10_000

// RemoteModule allows one module source that is not local, at one exact
// version (policy.yaml modules.remote).
type RemoteModule struct {
	Source  string
	Version string // "" for sources that take no version (git, http, oci, …)
}

// Problem is a module call that reaches something ungoverned.
type Problem struct {
	File   string // the module block's file, repository-relative with forward slashes when inside the repository
	Line   int
	Module string
	Source string
	Reason string
	Fix    string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: module %q (source %q) %s: %s", p.File, p.Line, p.Module, p.Source, p.Reason, p.Fix)
}

// Fixes that problems name.
const (
	fixLocal  = "move the module under infra/bootstrap/ (the governed tree), then run `groundzero manifest update` and sign the manifest"
	fixRemote = "list the module in governance/policy.yaml modules.remote with its exact source and an exact version, and set that version in the module block"
)

// CheckModules checks every call that Modules found. A local module's
// directory must resolve (symbolic links evaluated) to a directory inside
// repoRoot, where governed files lie, and whose files, at any depth, are all
// governed: governed reports whether a repository-relative, slash-separated
// path is covered by the integrity manifest (manifest.IsGoverned). A symbolic
// link inside the directory is refused, as the manifest refuses it. Any other source must be listed in allowed with the
// same source (registry addresses compare with the default host filled in
// and without regard to case) and the same exact version: for a registry
// module, the call's version must be one exact version (such as "4.1.2" or
// "= 4.1.2"), never a range or absent. It returns nil when every call passes.
func CheckModules(repoRoot string, governed func(rel string) bool, calls []ModuleCall, allowed []RemoteModule) []Problem {
	root, err := filepath.EvalSymlinks(repoRoot)
	if err != nil {
		root = filepath.Clean(repoRoot)
	}
	var problems []Problem
	localDone := map[string][]string{} // resolved module directory -> its reasons
	for _, c := range calls {
		add := func(r loc, reason, fix string) {
			problems = append(problems, Problem{File: display(root, repoRoot, r.file), Line: r.line, Module: c.Name, Source: c.Source, Reason: reason, Fix: fix})
		}
		block := loc{c.Range.Filename, c.Range.Start.Line}
		if c.Local() {
			real, err := filepath.EvalSymlinks(c.Dir)
			if err != nil {
				add(block, fmt.Sprintf("names directory %s, which cannot be resolved (%v)", c.Dir, err), fixLocal)
				continue
			}
			reasons, ok := localDone[real]
			if !ok {
				reasons = checkLocal(root, real, governed)
				localDone[real] = reasons
			}
			for _, r := range reasons {
				add(block, r, fixLocal)
			}
			continue
		}
		if reason, ofVersion := checkRemote(c, allowed); reason != "" {
			where := block
			if ofVersion && c.Version != "" {
				where = loc{c.VersionRange.Filename, c.VersionRange.Start.Line}
			}
			add(where, reason, fixRemote)
		}
	}
	return problems
}

type loc struct {
	file string
	line int
}

// display names file relative to the repository when it lies inside it.
func display(root, repoRoot, file string) string {
	for _, r := range []string{repoRoot, root} {
		if rel, err := filepath.Rel(r, file); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	if real, err := filepath.EvalSymlinks(file); err == nil {
		if rel, err := filepath.Rel(root, real); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	return file
}

// checkLocal returns why the resolved module directory dir is not governed
// (at most ten reasons).
func checkLocal(root, dir string, governed func(string) bool) []string {
	rel, err := filepath.Rel(root, dir)
	if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
		return []string{fmt.Sprintf("resolves to %s, outside the repository", dir)}
	}
	if rel = filepath.ToSlash(rel); !governed(path.Join(rel, "main.tf")) {
		return []string{fmt.Sprintf("resolves to %s, outside the governed tree", rel)}
	}
	var reasons []string
	n := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > MaxModuleFiles {
			return fmt.Errorf("more than %d entries", MaxModuleFiles)
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			reasons = append(reasons, fmt.Sprintf("holds %s, a symbolic link; governed files must be regular files", r))
		case d.IsDir():
		case !d.Type().IsRegular():
			reasons = append(reasons, fmt.Sprintf("holds %s, which is not a regular file", r))
		case !governed(r):
			reasons = append(reasons, fmt.Sprintf("holds %s, which the manifest does not govern", r))
		}
		if len(reasons) >= 10 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		reasons = append(reasons, fmt.Sprintf("cannot be read in full (%v)", err))
	}
	return reasons
}

var errStop = errors.New("stop")

// checkRemote returns why a non-local call is not allowed, or "", and
// whether the reason concerns its version.
func checkRemote(c ModuleCall, allowed []RemoteModule) (reason string, ofVersion bool) {
	src := normalSource(c.Source)
	var listed []RemoteModule
	for _, a := range allowed {
		if normalSource(a.Source) == src {
			listed = append(listed, a)
		}
	}
	if len(listed) == 0 {
		return "is not local and not listed in policy.yaml modules.remote", false
	}
	_, registry := registryAddr(c.Source)
	v, exact := exactVersion(c.Version)
	switch {
	case registry && c.Version == "":
		return "has no version, so OpenTofu takes the newest", true
	case c.Version != "" && !exact:
		return fmt.Sprintf("has version %q, a constraint rather than one exact version", c.Version), true
	}
	var versions []string
	for _, a := range listed {
		av, aexact := exactVersion(a.Version)
		if a.Version != "" && !aexact {
			continue // a range in policy.yaml allows nothing
		}
		if av == v {
			return "", false
		}
		if a.Version == "" {
			versions = append(versions, "no version")
		} else {
			versions = append(versions, fmt.Sprintf("%q", a.Version))
		}
	}
	if len(versions) == 0 {
		return "is listed in policy.yaml modules.remote only with a version constraint, not an exact version", true
	}
	return fmt.Sprintf("has version %q, but policy.yaml modules.remote allows only %s", c.Version, strings.Join(versions, ", ")), true
}

var (
	versionRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// registryRE is a module registry address: [host/]namespace/name/system[//subdir].
	registryRE = regexp.MustCompile(`^(?:([0-9A-Za-z.-]+(?::[0-9]+)?)/)?([0-9A-Za-z](?:[0-9A-Za-z_-]{0,62}[0-9A-Za-z])?)/([0-9A-Za-z](?:[0-9A-Za-z_-]{0,62}[0-9A-Za-z])?)/([0-9a-z]{1,64})(//.*)?$`)
)

// exactVersion returns v without an "=" operator or a leading "v" when it
// names one exact version; "" is exact (no version).
func exactVersion(v string) (string, bool) {
	s := strings.TrimSpace(v)
	if s == "" {
		return "", true
	}
	s = strings.TrimSpace(strings.TrimPrefix(s, "="))
	if !versionRE.MatchString(s) {
		return "", false
	}
	return strings.TrimPrefix(s, "v"), true
}

// DefaultRegistry is the host of a registry address that names none.
const DefaultRegistry = "registry.opentofu.org"

// registryAddr returns the canonical form of a module registry address and
// whether s is one. Hosts that OpenTofu reads as version control shorthands
// are not registries.
func registryAddr(s string) (string, bool) {
	m := registryRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	host := strings.ToLower(m[1])
	switch host {
	case "":
		host = DefaultRegistry
	case "github.com", "bitbucket.org", "gitlab.com":
		return "", false
	}
	if m[1] != "" && !strings.Contains(host, ".") && !strings.HasPrefix(host, "localhost") {
		return "", false
	}
	return host + "/" + strings.ToLower(m[2]+"/"+m[3]+"/"+m[4]) + m[5], true
}

// normalSource is the form sources compare in: registry addresses
// canonical, anything else exactly as written.
func normalSource(s string) string {
	if r, ok := registryAddr(s); ok {
		return r
	}
	return s
}
