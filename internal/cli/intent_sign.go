package cli

import "github.com/spf13/cobra"

func (a *app) intentSignCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "sign FILE [--key KEYSPEC]",
		Short: "add the caller's signature to an intent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			in, data, rel, err := readIntent(r, args[0])
			if err != nil {
				return err
			}
			return a.signIntent(r, rel, data, keySpec, in, "intent.sign", nil)
		},
	}
	keyFlag(c, &keySpec)
	return c
}
