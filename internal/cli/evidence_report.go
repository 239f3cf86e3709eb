package cli

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/atomicfile"
	"github.com/groundzero/groundzero/internal/evidence"
)

func (a *app) evidenceReportCmd() *cobra.Command {
	var trustRoot, html string
	c := &cobra.Command{
		Use:   "report FILE --html OUT.html [--trust-root SHA256]",
		Short: "verify a bundle and render the auditor's HTML report",
		Long: `report verifies a bundle as evidence verify does and writes one
self-contained HTML page: the verification status, the timeline of
bootstraps, applies, break-glass windows and drills in the period, the
control coverage matrix (which controls have evidence in the bundle and
which do not) and the signers with their roles. The page has no script and
loads nothing: its Content-Security-Policy forbids every external resource.
A bundle that does not verify is reported as such, and the command fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if html == "" {
				return usage(errors.New("--html is required"), "for example --html report.html")
			}
			file := args[0]
			rep, err := a.verifyBundle(file, trustRoot)
			if err != nil {
				return err
			}
			if rep.Index == nil {
				a.printBundle(file, rep)
				return bundleVerdict(file, rep)
			}
			var buf bytes.Buffer
			if err := evidence.Render(&buf, rep, evidence.Controls(), a.now.Format(time.RFC3339)); err != nil {
				return usage(err, "")
			}
			if err := atomicfile.Write(html, buf.Bytes(), 0o644); err != nil {
				return usage(err, "--html must name a file in a writable directory")
			}
			fmt.Fprintf(a.stdout, "wrote %s\n", html)
			a.printBundle(file, rep)
			return bundleVerdict(file, rep)
		},
	}
	c.Flags().StringVar(&html, "html", "", "the HTML `FILE` to write")
	trustRootFlag(c, &trustRoot)
	return c
}
