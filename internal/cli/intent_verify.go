package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/govern"
)

func (a *app) intentVerifyCmd() *cobra.Command {
	var format, planFile string
	c := &cobra.Command{
		Use:   "verify FILE [--plan PLANFILE]",
		Short: "check an intent: commit, lifetime, nonce and approvals",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			planSHA := ""
			if planFile != "" {
				if planSHA, err = sha256File(planFile); err != nil {
					return usage(err, "")
				}
			}
			v, verr := a.judgeIntent(r, in, data, rel, planSHA)
			var e *Error
			if errors.As(verr, &e) {
				return e
			}
			st := intentStatus{ID: in.ID, File: rel, Env: in.Env, Action: in.Action, Requester: in.Requester, Expires: in.Expires, Plan: in.PlanSHA256, Valid: verr == nil}
			if verr != nil {
				st.Problem = verr.Error()
			} else {
				st.Approvers = v.Approvers
			}
			if format == "json" {
				a.printJSON(st)
			} else if verr == nil {
				fmt.Fprintf(a.stdout, "VALID  %s: %s on %s, requested by %s, approved by %s, expires %s\n", in.ID, in.Action, in.Env, in.Requester, strings.Join(v.Approvers, ", "), in.Expires)
			} else {
				fmt.Fprintf(a.stdout, "INVALID  %s: %v\n", in.ID, verr)
			}
			if verr != nil {
				return failed(fmt.Errorf("intent %s: %w", in.ID, verr), intentHint(verr))
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	c.Flags().StringVar(&planFile, "plan", "", "the saved plan the intent must approve")
	return c
}

func intentHint(err error) string { return govern.IntentHint(err) }
