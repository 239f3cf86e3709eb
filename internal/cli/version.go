package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/pinned"
)

// versionText is what `groundzero version` and `groundzero --version`
// print: the module version, the commit it was built from, the Go version,
// and the OpenTofu version the release was tested with.
func versionText() string {
	version, commit, modified := "(devel)", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified && commit != "unknown" {
		commit += " (modified)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "groundzero %s\n", version)
	fmt.Fprintf(&b, "commit:   %s\n", commit)
	fmt.Fprintf(&b, "go:       %s\n", runtime.Version())
	fmt.Fprintf(&b, "opentofu: %s (the version this release is tested with)\n", pinned.TofuVersion)
	return b.String()
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, commit, Go version and tested OpenTofu version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(a.stdout, versionText())
			return err
		},
	}
}
