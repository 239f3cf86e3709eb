package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditRepairCmd() *cobra.Command {
	var storeURL string
	c := &cobra.Command{
		Use:   "repair",
		Short: "move a torn tail aside so appends can continue (local stores)",
		Long: `repair is for a local trail whose last line was cut off by a crash. It moves
the incomplete bytes into DIR/torn/ (they are kept, never discarded) and
truncates the segment to its last complete entry. Nothing else is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			d, ok := store.(*trail.Dir)
			if !ok {
				return usage(fmt.Errorf("%s is an object store; entries there are written whole and never torn", store.URL()), "")
			}
			n, aside, err := d.Repair(a.now)
			if err != nil {
				return usage(err, "")
			}
			if n == 0 {
				fmt.Fprintln(a.stdout, "no torn tail; nothing to repair")
				return nil
			}
			fmt.Fprintf(a.stdout, "moved %d torn bytes to %s\n", n, aside)
			rec := a.recorder(r)
			rec.add("audit.repair", store.URL(), map[string]any{"bytes": n, "kept_at": aside})
			return rec.flush(nil)
		},
	}
	storeFlag(c, &storeURL)
	return c
}
