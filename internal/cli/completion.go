package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) completionCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print a shell completion script",
		Long: `completion prints a completion script for bash, zsh or fish on stdout.

  bash:  groundzero completion bash > /etc/bash_completion.d/groundzero
         (or: source <(groundzero completion bash) in ~/.bashrc)
  zsh:   groundzero completion zsh > "${fpath[1]}/_groundzero"
  fish:  groundzero completion fish > ~/.config/fish/completions/groundzero.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			}
			return usage(fmt.Errorf("no completion for shell %q", args[0]), "the shells are bash, zsh and fish: `groundzero completion bash`")
		},
	}
	return c
}
