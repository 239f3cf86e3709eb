// Command compare times whole programs side by side and reports their median
// wall time, peak RSS, and the ratio of each to the last one (the reference).
//
//	go run ./bench/compare -runs 5 'groundzero=bin/groundzero manifest verify' 'stock=sha256sum -c MANIFEST'
//
// Each command runs under sh -c once to warm caches, then -runs times.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

type result struct {
	label  string
	median time.Duration
	min    time.Duration
	rssKiB int64
}

func run(cmdline string) (time.Duration, int64, error) {
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	return d, rss, err
}

func main() {
	runs := flag.Int("runs", 5, "timed runs per command")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: compare [-runs N] 'label=command' ...")
		os.Exit(2)
	}
	var results []result
	for _, arg := range flag.Args() {
		label, cmdline, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "compare: %q is not label=command\n", arg)
			os.Exit(2)
		}
		if _, _, err := run(cmdline); err != nil {
			fmt.Fprintf(os.Stderr, "compare: %s failed: %v\n", label, err)
			os.Exit(1)
		}
		var times []time.Duration
		var rss int64
		for i := 0; i < *runs; i++ {
			d, r, err := run(cmdline)
			if err != nil {
				fmt.Fprintf(os.Stderr, "compare: %s failed: %v\n", label, err)
				os.Exit(1)
			}
			times = append(times, d)
			rss = max(rss, r)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		results = append(results, result{label, times[len(times)/2], times[0], rss})
	}
	ref := results[len(results)-1]
	fmt.Printf("%-28s %12s %12s %10s %8s\n", "command", "median", "min", "max RSS", "ratio")
	for _, r := range results {
		fmt.Printf("%-28s %12s %12s %7.1f MiB %8.3f\n", r.label, r.median.Round(time.Millisecond), r.min.Round(time.Millisecond),
			float64(r.rssKiB)/1024, float64(r.median)/float64(ref.median))
	}
}
