package cli

import "github.com/spf13/cobra"

func (a *app) ciPolicyCmd() *cobra.Command {
	return &cobra.Command{Use: "policy", Hidden: true}
}
