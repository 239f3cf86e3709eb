package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/govern"
)

func (a *app) backendCreateCmd() *cobra.Command {
	var env, intentFile, trustRoot string
	c := &cobra.Command{
		Use:   "create --env ENV --intent FILE",
		Short: "create the state store, its key and its lock, and probe it (bootstrap runs this too)",
		Long: `create runs the gates (the signed release tag is required), checks the
bootstrap intent without consuming it, then creates the key, the bucket and
the lock the policy selects, or finds them made, and probes the store. It
changes nothing that exists and duplicates nothing; every call's request ID
and every resource identifier go into the audit trail. It exits 1 when the
store lacks a capability policy.yaml requires and no waiver covers it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, run, err := a.intentRun(intentFile, "give the environment's bootstrap intent", env, "", "", trustRoot)
			if err != nil {
				return err
			}
			defer run.Close()
			if ok, err := run.Static(a.ctx, true, run.EnvName); !ok || err != nil {
				return a.finishRun(run, "text", err)
			}
			f, ok := a.runIntent(run, r, intentFile)
			if !ok {
				return a.finishRun(run, "text", nil)
			}
			done, err := run.CreateStore(a.ctx, f, a.openBackend)
			var pe *govern.ProbeError
			if errors.As(err, &pe) {
				err = nil
			}
			if err != nil && !errors.As(err, new(*govern.UsageError)) {
				err = failed(err, "")
			}
			if ferr := a.finishRun(run, "text", err); ferr != nil || done == nil || done.Provisioned == nil {
				return ferr
			}
			p := done.Provisioned
			created := 0
			for _, c := range p.Calls {
				if c.Outcome == "created" {
					created++
				}
			}
			fmt.Fprintf(a.stdout, "store %s ready: %d resource(s) created, %d call(s) recorded\n", p.Bucket, created, len(p.Calls))
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&intentFile, "intent", "", "the environment's signed bootstrap intent")
	trustRootFlag(c, &trustRoot)
	return c
}
