package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/offline"
	"github.com/groundzero/groundzero/internal/signers"
)

func (a *app) bundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "create, verify and restore the offline rebuild bundle",
		Long: `An offline rebuild bundle is one file (a gzip-compressed tar) holding a git
bundle of the repository at a signed release tag, the MANIFEST and the
signers registry with their signatures and public keys, and a signed index
of all of them with their SHA-256. It is verified and restored with no
network and no repository.`,
	}
	c.AddCommand(a.bundleCreateCmd(), a.bundleVerifyCmd(), a.bundleRestoreCmd())
	return c
}

func (a *app) bundleCreateCmd() *cobra.Command {
	var out, tag, key, trustRoot string
	c := &cobra.Command{
		Use:   "create --out FILE [--tag TAG] [--key KEYSPEC]",
		Short: "write the offline rebuild bundle of the repository at a signed tag",
		Long: `create writes FILE: a git bundle of refs/tags/TAG (the signed tag object and
the history it reaches), the tag's governance/MANIFEST, signers registry,
earlier registry versions and public keys with their signatures, and the
index groundzero-bundle.json listing each with its SHA-256, signed by --key
(a current signer with role release, approver or security). TAG defaults to
the tag on the governed commit. The written file is verified as ` + "`bundle verify`" + `
would verify it; a bundle that does not verify is not written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usage(errors.New("--out is required"), "name the bundle file to write, e.g. --out groundzero-v4.bundle.tar.gz")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			s, _, err := a.signer(r, key)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return usage(err, "")
			}
			if _, err := os.Lstat(abs); err == nil {
				return usage(fmt.Errorf("%s exists", out), "choose a new file name; create never replaces a bundle")
			}
			rep, err := offline.Create(a.ctx, offline.CreateConfig{Repo: r, Tag: tag, Signer: s, Now: a.now, Out: abs, TrustRoot: a.trustRoot(trustRoot)})
			if err != nil {
				var nt *offline.NoTagError
				if errors.As(err, &nt) {
					return usage(err, "name the release tag with --tag TAG")
				}
				return bundleErr(err)
			}
			fmt.Fprintf(a.stdout, "wrote %s: tag %s (%.12s), %d file(s), sha256 %s\n", out, rep.Tag, rep.Commit, rep.Files, rep.SHA256)
			a.info("keep the bundle offline; verify it with `groundzero bundle verify %s --trust-root SHA256`", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "the bundle `FILE` to write")
	c.Flags().StringVar(&tag, "tag", "", "the signed release `TAG` (default: the tag on the governed commit)")
	keyFlag(c, &key)
	trustRootFlag(c, &trustRoot)
	return c
}

func (a *app) bundleVerifyCmd() *cobra.Command {
	var trustRoot, format string
	c := &cobra.Command{
		Use:   "verify FILE [--trust-root SHA256]",
		Short: "verify an offline rebuild bundle, with no network and no repository",
		Long: `verify checks, offline and outside any repository: every entry of the archive
(regular files with known names only, each once, within size limits); the
signers registry inside from the pinned version (--trust-root or
GROUNDZERO_TRUST_ROOT; without a pin, trust on first use, and verify says
so); the index signature against that registry; each file's SHA-256; the
git bundle, unbundled with git into a private temporary directory, holding
exactly the signed tag the index names; the tag, manifest and registry
gates on the tag's tree; and that the loose governance files are the tree's.
It exits 1 naming the file that does not verify.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			rep, err := offline.Verify(a.ctx, args[0], offline.VerifyConfig{Now: a.now, TrustRoot: a.trustRoot(trustRoot)})
			if err != nil {
				return bundleErr(err)
			}
			return a.printBundleReport(format, args[0], rep)
		},
	}
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}

func (a *app) bundleRestoreCmd() *cobra.Command {
	var trustRoot string
	c := &cobra.Command{
		Use:   "restore FILE DIR",
		Short: "verify an offline rebuild bundle, then write the repository into DIR",
		Long: `restore verifies FILE as ` + "`bundle verify`" + ` does, then writes the repository into
DIR, which must not exist or be empty: a git repository holding the signed
tag, checked out at the tagged commit. A tree with a symbolic link that
points outside DIR is refused and nothing is left in DIR.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := offline.Restore(a.ctx, args[0], args[1], offline.VerifyConfig{Now: a.now, TrustRoot: a.trustRoot(trustRoot)})
			if err != nil {
				return bundleErr(err)
			}
			if err := a.printBundleReport("text", args[0], rep); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "restored %s at tag %s (%.12s) into %s\n", args[0], rep.Tag, rep.Commit, args[1])
			return nil
		},
	}
	trustRootFlag(c, &trustRoot)
	return c
}

func (a *app) printBundleReport(format, file string, rep *offline.Report) error {
	if format == "json" {
		return a.printJSON(rep)
	}
	fmt.Fprintf(a.stdout, "bundle %s (sha256 %s)\n", file, rep.SHA256)
	fmt.Fprintf(a.stdout, "index: %d file(s), signed by %s\n", rep.Files, joinIDs(rep.Signers))
	if rep.Pinned {
		fmt.Fprintf(a.stdout, "registry: version %d (sha256:%.16s), chain verified from the pinned trust root\n", rep.Registry.Version, rep.Registry.SHA256)
	} else {
		fmt.Fprintf(a.stdout, "registry: version %d (sha256:%.16s); trust on first use: no --trust-root pinned (v1 sha256:%s)\n", rep.Registry.Version, rep.Registry.SHA256, rep.FirstUse)
	}
	for _, g := range rep.Gates {
		fmt.Fprintf(a.stdout, "PASS  %s\n", g)
	}
	fmt.Fprintf(a.stdout, "verified: tag %s, commit %s, manifest version %d\n", rep.Tag, rep.Commit, rep.Manifest.Version)
	if !rep.Pinned {
		a.info("warning: trust on first use; pin the registry with --trust-root or GROUNDZERO_TRUST_ROOT")
	}
	return nil
}

func joinIDs(ids []string) string {
	if len(ids) == 0 {
		return "nobody"
	}
	s := ids[0]
	for _, id := range ids[1:] {
		s += ", " + id
	}
	return s
}

// bundleErr gives the offline package's refusals their exit codes and
// hints: a bundle that does not verify exits 1; a file that cannot be read
// or a target that cannot be written exits 2.
func bundleErr(err error) error {
	var (
		unsafe *offline.UnsafeEntryError
		limit  *offline.LimitError
		format *offline.FormatError
		file   *offline.FileError
		sig    *offline.SignatureError
		ixErr  *offline.IndexError
		gateE  *offline.GateError
		regE   *offline.RegistryError
		target *offline.TargetError
		pinE   *signers.PinError
	)
	switch {
	case errors.As(err, &unsafe):
		return failed(err, "the bundle was tampered with or made by another tool; use a bundle made by `groundzero bundle create`")
	case errors.As(err, &limit):
		return failed(err, "the bundle is larger than any groundzero bundle may be; it is refused unread")
	case errors.As(err, &format):
		return failed(err, "give the file `groundzero bundle create` wrote")
	case errors.As(err, &pinE):
		return failed(err, "the registry inside is not the pinned one: check --trust-root against the value kept outside the repository, or use a bundle from the governed repository")
	case errors.As(err, &regE):
		return failed(err, "the registry inside the bundle does not verify; use an untampered bundle")
	case errors.As(err, &sig):
		return failed(err, "a bundle index is signed by a current signer with role release, approver or security in the registry inside")
	case errors.As(err, &ixErr), errors.As(err, &file):
		return failed(err, "the bundle was changed after it was signed; use an untampered copy")
	case errors.As(err, &gateE):
		return failed(err, gateE.Result.Hint)
	case errors.As(err, &target):
		return usage(err, "restore into a new or empty directory")
	case errors.Is(err, fs.ErrNotExist):
		return usage(err, "")
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return failed(err, "")
}
