package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
)

func (a *app) manifestUpdateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "update",
		Short: "rewrite governance/MANIFEST from the governed files in the work tree",
		Long: `update hashes every governed file (governance/** except MANIFEST, its
signatures and intents/, plus infra/bootstrap/**) and rewrites
governance/MANIFEST in the format of sha256sum. Existing signatures over the
old MANIFEST no longer match and are removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			m, err := manifest.Build(a.ctx, r)
			if err != nil {
				return failed(err, "governed files must be regular files (no symbolic links) inside the repository")
			}
			old, err := r.ReadFile(repo.ManifestFile, manifest.MaxSize)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return usage(err, "")
			}
			if m, err = nextManifest(r, old, m); err != nil {
				return err
			}
			out := m.Format()
			if string(old) == string(out) {
				a.info("%s is up to date (version %d, %d files)", repo.ManifestFile, m.Version, len(m.Entries))
				fmt.Fprintln(a.stdout, repo.ManifestFile)
				return nil
			}
			if err := r.WriteFile(repo.ManifestFile, out); err != nil {
				return usage(err, "")
			}
			if err := sigfile.Remove(r, repo.ManifestFile); err != nil {
				return usage(err, "")
			}
			fmt.Fprintln(a.stdout, repo.ManifestFile)
			a.info("wrote %s version %d (%d files); it needs new signatures: `groundzero manifest sign`", repo.ManifestFile, m.Version, len(m.Entries))
			rec := a.recorder(r)
			rec.add("manifest.update", repo.ManifestFile, map[string]any{"files": len(m.Entries), "sha256": sha256hex(out), "version": m.Version})
			return rec.flush(nil)
		},
	}
}

// nextManifest gives the built manifest its version. A signed MANIFEST is
// history: a change makes version N+1, linked to it by its SHA-256. An
// unsigned one is still being prepared and keeps its version.
func nextManifest(r *repo.Repo, old []byte, built *manifest.Manifest) (*manifest.Manifest, error) {
	if old == nil {
		built.Version = 1
		return built, nil
	}
	prev, err := manifest.Parse(old)
	if err != nil {
		// An unreadable MANIFEST is replaced; its version is lost, and
		// the freshness anchor refuses an older version than it recorded.
		built.Version = 1
		return built, nil
	}
	sigs, err := sigfile.Load(r, repo.ManifestFile)
	if err != nil {
		return nil, usage(err, "")
	}
	switch {
	case len(sigs) > 0 && prev.SameEntries(built):
		return prev, nil
	case len(sigs) > 0:
		return prev.Next(old, built.Entries), nil
	case prev.Version == 0:
		built.Version = 1
	default:
		built.Version, built.Previous = prev.Version, prev.Previous
	}
	return built, nil
}
