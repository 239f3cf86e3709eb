package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/semver"

	"github.com/groundzero/groundzero/internal/ciwork"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
)

// gitignoreLines keep local evidence and OpenTofu working files out of git.
var gitignoreLines = []string{
	"/.groundzero/",
	"/infra/bootstrap/.terraform/",
	"*.tfstate",
	"*.tfstate.backup",
	".terraform.tfstate.lock.info",
}

func (a *app) initCmd() *cobra.Command {
	var backend, env, evidence, ciProvider, ciVersion string
	var force bool
	c := &cobra.Command{
		Use:   "init",
		Short: "lay down a governed repository: policy, signers registry, manifest",
		Long: `init writes governance/policy.yaml (with commented defaults),
governance/signers.yaml (version 1, no signers yet) and governance/MANIFEST in
the current git work tree. It refuses to overwrite existing files unless
--force is given.

--evidence names the authoritative evidence store, object storage with
Object Lock (s3://BUCKET/PREFIX?endpoint=...): the audit trail and the
freshness anchor against which rollback and replay are judged. Without it
the trail is kept in a local directory and the environment is marked
demo-grade.

--ci github writes .github/workflows/groundzero.yml and --ci gitlab writes
.gitlab-ci.yml: a check job on every change, a plan job on branch pushes
and a governed apply job for --env that runs only from a v* release tag,
with the runner's OIDC identity. The apply job applies the intent named in
the tag's annotation by the line "Intent: governance/intents/ID.json". The
jobs install the groundzero release --ci-version (default: this binary's
release) and read GROUNDZERO_TRUST_ROOT, GROUNDZERO_EVIDENCE_STORE and the
checkpoint key GROUNDZERO_CHECKPOINT_KEY from the CI settings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(policy.BackendKinds, backend) {
				return usage(fmt.Errorf("--backend %q is not one of %s", backend, strings.Join(policy.BackendKinds, ", ")), "")
			}
			if _, err := policy.Parse("--env", []byte(fmt.Sprintf("version: 1\nbackend: {kind: local}\nenvironments: [{name: %q}]\n", env))); err != nil {
				return usage(fmt.Errorf("--env %q is not a valid environment name (lower-case letters, digits and -, starting with a letter)", env), "")
			}
			var ciFile []byte
			if ciProvider != "" {
				if !slices.Contains(ciwork.Providers, ciProvider) {
					return usage(fmt.Errorf("--ci %q is not one of %s", ciProvider, strings.Join(ciwork.Providers, ", ")), "")
				}
				if ciVersion == "" {
					ciVersion = releaseVersion()
				}
				if ciVersion == "" {
					return usage(fmt.Errorf("--ci needs --ci-version: this groundzero is not a release build"),
						"name the groundzero release the CI jobs install, e.g. --ci-version v1.2.0")
				}
				var err error
				ciFile, err = ciwork.Render(ciwork.Config{Provider: ciProvider, Env: env, Version: ciVersion,
					TofuVersion: ciwork.DefaultTofuVersion, GoVersion: ciwork.DefaultGoVersion})
				if err != nil {
					return usage(err, "")
				}
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			files := []string{repo.PolicyFile, repo.SignersFile, repo.ManifestFile}
			if ciProvider != "" {
				files = append(files, ciwork.Path(ciProvider))
			}
			var existing []string
			for _, f := range files {
				if r.Exists(f) {
					existing = append(existing, f)
				}
			}
			if len(existing) > 0 && !force {
				return usage(fmt.Errorf("already initialised: %s exist(s)", strings.Join(existing, ", ")),
					"keep the existing governance files, or pass --force to overwrite them")
			}
			tmpl := policy.Template(backend, env, evidence)
			if _, err := policy.Parse("--evidence", tmpl); err != nil {
				return usage(fmt.Errorf("--evidence %q is not an evidence store URL", evidence), "give s3://BUCKET/PREFIX (with ?endpoint=URL&path_style=true for S3-compatible stores)")
			}
			if err := r.WriteFile(repo.PolicyFile, tmpl); err != nil {
				return usage(err, "")
			}
			reg := &signers.Registry{Version: 1, Threshold: 2}
			if err := r.WriteFile(repo.SignersFile, registryTemplate(reg)); err != nil {
				return usage(err, "")
			}
			if err := os.MkdirAll(r.Abs(repo.KeysDir), 0o755); err != nil {
				return usage(err, "")
			}
			if err := ensureGitignore(r); err != nil {
				return usage(err, "")
			}
			if ciProvider != "" {
				if err := os.MkdirAll(r.Abs(filepath.Dir(ciwork.Path(ciProvider))), 0o755); err != nil {
					return usage(err, "")
				}
				if err := r.WriteFile(ciwork.Path(ciProvider), ciFile); err != nil {
					return usage(err, "")
				}
			}
			m, err := manifest.Build(a.ctx, r)
			if err != nil {
				return usage(err, "")
			}
			m.Version = 1
			if err := r.WriteFile(repo.ManifestFile, m.Format()); err != nil {
				return usage(err, "")
			}
			for _, f := range files {
				fmt.Fprintln(a.stdout, f)
			}
			a.info("initialised a governed repository: backend %s, environment %s", backend, env)
			if evidence == "" {
				a.info("evidence is kept in %s, a local store: environment %s is demo-grade; name WORM object storage with --evidence for real use", policy.DefaultEvidenceStore, env)
			}
			if ciProvider != "" {
				a.info("%s installs groundzero %s; set GROUNDZERO_TRUST_ROOT, GROUNDZERO_EVIDENCE_STORE and the secret GROUNDZERO_CHECKPOINT_KEY in the CI settings, and a ci section in policy.yaml", ciwork.Path(ciProvider), ciVersion)
			}
			if backend == "local" {
				a.info("backend local is for demos and tests; choose s3, gcs, oci, spaces or minio with --backend for real state")
			}
			a.info("next: `groundzero signers add` for each person, `groundzero signers sign`, `groundzero manifest update`, `groundzero manifest sign`")
			rec := a.recorder(r)
			rec.add("init", "repository", map[string]any{"backend": backend, "env": env, "force": force, "ci": ciProvider})
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&backend, "backend", "local", "state backend: s3, gcs, oci, spaces, minio or local")
	c.Flags().StringVar(&env, "env", "dev", "name of the first environment")
	c.Flags().StringVar(&evidence, "evidence", "", "authoritative evidence store `URL` (s3://BUCKET/PREFIX); default: a local, demo-grade store")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing governance files")
	c.Flags().StringVar(&ciProvider, "ci", "", "also write a CI workflow: github or gitlab")
	c.Flags().StringVar(&ciVersion, "ci-version", "", "groundzero release the CI jobs install (default: this binary's release)")
	return c
}

// releaseVersion is the module version this binary was built from, when it
// is a tagged release (go install …@vX.Y.Z), else "".
func releaseVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	if !semver.IsValid(v) || semver.Canonical(v) != v || semver.Prerelease(v) != "" {
		return ""
	}
	return v
}

func registryTemplate(reg *signers.Registry) []byte {
	out := string(reg.Format())
	return []byte(strings.Replace(out, "threshold: 2\n",
		"# Two security signatures approve each new version (one person alone cannot\n# change who is trusted). Lower it to 1 only for a single-person trial.\nthreshold: 2\n", 1))
}

func ensureGitignore(r *repo.Repo) error {
	const name = ".gitignore"
	var have []byte
	if r.Exists(name) {
		var err error
		if have, err = r.ReadFile(name, 1<<20); err != nil {
			return err
		}
	}
	lines := strings.Split(string(have), "\n")
	out := string(have)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	added := false
	for _, l := range gitignoreLines {
		if !slices.Contains(lines, l) {
			out += l + "\n"
			added = true
		}
	}
	if !added {
		return nil
	}
	return r.WriteFile(name, []byte(out))
}
