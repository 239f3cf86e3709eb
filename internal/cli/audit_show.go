package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditShowCmd() *cobra.Command {
	var storeURL, since, action, format string
	c := &cobra.Command{
		Use:   "show [--since TIME|DURATION] [--action ACTION]",
		Short: "list audit entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			var from time.Time
			if since != "" {
				if t, err := time.Parse(time.RFC3339, since); err == nil {
					from = t
				} else if d, err := policy.ParseDuration(since); err == nil {
					from = a.now.Add(-d)
				} else {
					return usage(fmt.Errorf("--since %q is neither an RFC 3339 time nor a duration such as 24h", since), "")
				}
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			var entries []*audit.Entry
			err = trail.Scan(a.ctx, store, nil, func(line []byte) error {
				e, err := audit.ParseEntry(line)
				if err != nil {
					return fmt.Errorf("an entry is malformed (%v); run `groundzero audit verify`", err)
				}
				t, _ := time.Parse(time.RFC3339, e.Time)
				if (action == "" || e.Action == action || strings.HasPrefix(e.Action, action+".")) && !t.Before(from) {
					entries = append(entries, e)
				}
				return nil
			})
			var torn *trail.TornError
			if errors.As(err, &torn) {
				a.info("%v; showing the complete entries (`groundzero audit repair` moves the torn bytes aside)", err)
			} else if err != nil {
				return failed(err, "")
			}
			if format == "json" {
				if entries == nil {
					entries = []*audit.Entry{}
				}
				return a.printJSON(entries)
			}
			for _, e := range entries {
				d, _ := json.Marshal(e.Details)
				fmt.Fprintf(a.stdout, "%6d  %s  %-16s %-16s %-24s %s\n", e.Seq, e.Time, e.Actor, e.Action, e.Subject, d)
			}
			return nil
		},
	}
	storeFlag(c, &storeURL)
	c.Flags().StringVar(&since, "since", "", "only entries at or after this RFC 3339 time, or this long ago (24h, 7d)")
	c.Flags().StringVar(&action, "action", "", "only entries with this action (or its sub-actions: gate, signers, manifest...)")
	formatFlagVar(c, &format, "text", "json")
	return c
}
