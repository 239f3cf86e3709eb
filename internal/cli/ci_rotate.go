package cli

import "github.com/spf13/cobra"

func (a *app) ciRotateCmd() *cobra.Command {
	return &cobra.Command{Use: "rotate", Hidden: true}
}
