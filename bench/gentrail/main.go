// Command gentrail appends N synthetic entries of about 300 bytes to a local
// audit trail, for benchmarks.
//
//	go run ./bench/gentrail -n 1000000 -dir REPO/.groundzero/evidence
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/trail"
)

func main() {
	n := flag.Int("n", 1_000_000, "entries to append")
	dir := flag.String("dir", "", "local evidence store directory")
	flag.Parse()
	s, err := trail.OpenDir(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	const batch = 10_000
	pad := strings.Repeat("x", 4)
	now := time.Now()
	for done := 0; done < *n; {
		k := min(batch, *n-done)
		events := make([]trail.Event, k)
		for i := range events {
			events[i] = trail.Event{Actor: "ci:runner-17", Action: "gate", Subject: "manifest",
				Details: map[string]any{"ok": true, "detail": "2000 governed file(s) match governance/MANIFEST; signed by alice", "run": done + i, "pad": pad}}
		}
		if _, err := trail.Append(context.Background(), s, now, events...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		done += k
	}
}
