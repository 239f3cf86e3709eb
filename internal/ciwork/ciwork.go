// Package ciwork renders the CI configuration that `groundzero init --ci`
// writes: a GitHub Actions workflow or a GitLab CI file, each with a check job
// on every change, a plan job, and a governed apply job that runs only from a
// v* release tag with the runner's OIDC identity.
//
// Rendering is a pure function of Config over templates embedded in the
// binary, so the same inputs always give the same bytes. Third-party actions
// are pinned by full commit SHA (see Actions). The GitLab jobs are the hidden
// jobs of the template the repository ships as ci/gitlab/groundzero.gitlab-ci.yml,
// included verbatim and extended, so a repository that includes the shipped
// template and one that init wrote run the same scripts.
//
// The apply job finds its intent in the annotation of the release tag: one
// line "Intent: governance/intents/ID.json".
package ciwork

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"text/template"

	"golang.org/x/mod/semver"
)

// Providers are the CI systems Render knows.
var Providers = []string{"github", "gitlab"}

// Path returns where a repository keeps the provider's CI configuration.
func Path(provider string) string {
	switch provider {
	case "github":
		return ".github/workflows/groundzero.yml"
	case "gitlab":
		return ".gitlab-ci.yml"
	}
	return ""
}

// Action is a third-party GitHub action pinned by commit.
type Action struct {
	Repo string // owner/name[/path]
	SHA  string // full commit SHA
	Tag  string // the release the SHA is
}

// Uses is the value of a step's uses: key.
func (a Action) Uses() string { return a.Repo + "@" + a.SHA }

// The actions the GitHub workflow and action.yml use.
var (
	Checkout    = Action{"actions/checkout", "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"}
	SetupGo     = Action{"actions/setup-go", "d35c59abb061a4a6fb18e82ac0862c26744d6ab5", "v5.5.0"}
	UploadSARIF = Action{"github/codeql-action/upload-sarif", "5d4e8d1aca955e8d8589aabd499c5cae939e33c7", "v4.31.9"}
)

// Actions lists every pinned action.
var Actions = []Action{Checkout, SetupGo, UploadSARIF}

// Defaults for Config.
const (
	DefaultTofuVersion = "v1.12.6"
	DefaultGoVersion   = "1.26"
)

// Config is what a rendering depends on.
type Config struct {
	Provider    string // github or gitlab
	Env         string // the environment plan and apply act on
	Version     string // groundzero release the jobs install, e.g. v1.2.0
	TofuVersion string // OpenTofu release plan and apply build, e.g. v1.12.6
	GoVersion   string // Go toolchain the jobs use, e.g. 1.26
}

var (
	envRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	goRE  = regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+(\.[0-9]+)?$`)
)

// Render returns the CI configuration for cfg, to be written at
// Path(cfg.Provider).
func Render(cfg Config) ([]byte, error) {
	if !envRE.MatchString(cfg.Env) {
		return nil, fmt.Errorf("environment %q is not a valid name", cfg.Env)
	}
	for _, v := range []struct{ what, v string }{{"groundzero version", cfg.Version}, {"OpenTofu version", cfg.TofuVersion}} {
		if !semver.IsValid(v.v) || semver.Canonical(v.v) != v.v || semver.Build(v.v) != "" {
			return nil, fmt.Errorf("%s %q is not a release version such as v1.2.3", v.what, v.v)
		}
	}
	if !goRE.MatchString(cfg.GoVersion) {
		return nil, fmt.Errorf("Go version %q is not a version such as 1.26", cfg.GoVersion)
	}
	var t *template.Template
	data := struct {
		Config
		Checkout, SetupGo, UploadSARIF Action
		Install                        string
		GitLabJobs                     string
	}{cfg, Checkout, SetupGo, UploadSARIF, InstallScript, GitLabTemplate}
	switch cfg.Provider {
	case "github":
		t = githubTmpl
	case "gitlab":
		t = gitlabTmpl
	default:
		return nil, fmt.Errorf("CI provider %q is not one of github, gitlab", cfg.Provider)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var (
	//go:embed templates/github.yml.tmpl
	githubSrc string
	//go:embed templates/gitlab.yml.tmpl
	gitlabSrc string

	// InstallScript is the shell step that installs groundzero (and, when
	// GROUNDZERO_TOFU_VERSION is set, OpenTofu) on a GitHub runner; the
	// workflow and action.yml run exactly this text.
	//
	//go:embed templates/install-github.sh
	InstallScript string

	// GitLabTemplate is ci/gitlab/groundzero.gitlab-ci.yml: hidden jobs that
	// a .gitlab-ci.yml extends.
	//
	//go:embed templates/groundzero.gitlab-ci.yml
	GitLabTemplate string
)

var (
	funcs      = template.FuncMap{"indent": indent}
	githubTmpl = template.Must(template.New("github").Delims("[%", "%]").Funcs(funcs).Parse(githubSrc))
	gitlabTmpl = template.Must(template.New("gitlab").Delims("[%", "%]").Funcs(funcs).Parse(gitlabSrc))
)

// indent prefixes every non-empty line of s with n spaces and drops the
// final newline (the template line supplies it).
func indent(n int, s string) string {
	pad := bytes.Repeat([]byte(" "), n)
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(bytes.TrimSuffix([]byte(s), []byte("\n")), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			b.Write(pad)
		}
		b.Write(line)
	}
	return b.String()
}
