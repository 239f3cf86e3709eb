// Command evidence runs a throwaway WORM evidence store for the demo: the
// pinned S3 gateway on 127.0.0.1 with one Object Lock bucket. It prints the
// store's URL, the gateway's endpoint (where the demo's state store is
// created too) and its credentials as shell assignments, then runs
// until it is interrupted.
//
//	go run ./scripts/evidence DIR BUCKET
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/groundzero/groundzero/internal/s3gateway"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: evidence DIR BUCKET")
		os.Exit(2)
	}
	g, err := s3gateway.StartIn(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "evidence:", err)
		os.Exit(1)
	}
	defer g.Stop()
	if err := g.CreateBucket(os.Args[2], true); err != nil {
		fmt.Fprintln(os.Stderr, "evidence:", err)
		os.Exit(1)
	}
	for _, kv := range s3gateway.Env() {
		fmt.Printf("export %s\n", kv)
	}
	fmt.Printf("STORE='s3://%s/trail?endpoint=%s&path_style=true'\n", os.Args[2], g.Endpoint)
	fmt.Printf("S3_ENDPOINT='%s'\n", g.Endpoint)
	os.Stdout.Close() // the caller reads up to here
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
