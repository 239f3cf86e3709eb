package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/sigfile"
)

func (a *app) intentApproveCmd() *cobra.Command {
	var keySpec, planFile string
	c := &cobra.Command{
		Use:   "approve FILE --plan PLANFILE [--key KEYSPEC]",
		Short: "sign an intent bound to the SHA-256 of a saved plan",
		Long: `approve signs an intent only for one saved plan. An intent not yet bound
to a plan (and not yet signed) is bound to PLANFILE first; an intent bound to
another plan is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile == "" {
				return usage(errors.New("--plan is required"), "give the saved plan written by `groundzero plan`")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			sum, err := sha256File(planFile)
			if err != nil {
				return usage(err, "")
			}
			switch {
			case in.PlanSHA256 == sum:
			case in.PlanSHA256 != "":
				return failed(fmt.Errorf("intent %s approves plan sha256:%s, not %s (sha256:%s)", in.ID, in.PlanSHA256[:16], planFile, sum[:16]),
					"review the plan the intent names, or create a new intent for this plan")
			default:
				if sigs, _ := sigfile.Load(r, rel); len(sigs) > 0 {
					return failed(fmt.Errorf("intent %s is signed already without a plan; binding it now would void those signatures", in.ID),
						"create a new intent with `groundzero intent new --plan`")
				}
				in.PlanSHA256 = sum
				if data, err = in.Marshal(); err != nil {
					return usage(err, "")
				}
				if err := r.WriteFile(rel, data); err != nil {
					return usage(err, "")
				}
				a.info("intent %s is now bound to plan sha256:%s", in.ID, sum)
			}
			return a.signIntent(r, rel, data, keySpec, in, "intent.approve", map[string]any{"plan_sha256": sum})
		},
	}
	keyFlag(c, &keySpec)
	c.Flags().StringVar(&planFile, "plan", "", "the saved plan being approved")
	return c
}
