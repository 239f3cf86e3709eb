// Command groundzero is the governed infrastructure bootstrap.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/groundzero/groundzero/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		cli.PrintError(os.Stderr, err)
	}
	os.Exit(cli.ExitCode(err))
}
