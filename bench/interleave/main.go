// Command interleave times whole programs side by side, interleaved: after
// one warm-up round, each round runs every command once, in turn, so that a
// change in the machine's load touches them all alike. It reports each
// command's median and minimum wall time, its median CPU time (user + sys,
// its children included: CPU above wall means more than one core worked),
// its peak RSS, and the ratio of its median wall time to the last command's
// (the reference).
//
//	go run ./bench/interleave -runs 5 'groundzero=bin/groundzero evidence verify B' 'stock=sh -c "…"'
//
// Each command runs under sh -c; every run must succeed.
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

type command struct {
	label, line string
	wall, cpu   []time.Duration
	rssKiB      int64
}

func (c *command) run(record bool) error {
	cmd := exec.Command("sh", "-c", c.line)
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return err
	}
	if !record {
		return nil
	}
	c.wall = append(c.wall, d)
	c.cpu = append(c.cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		c.rssKiB = max(c.rssKiB, ru.Maxrss)
	}
	return nil
}

func sorted(xs []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func main() {
	runs := flag.Int("runs", 5, "timed runs per command")
	flag.Parse()
	if flag.NArg() < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: interleave [-runs N] 'label=command' ...")
		os.Exit(2)
	}
	var cmds []*command
	for _, arg := range flag.Args() {
		label, line, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "interleave: %q is not label=command\n", arg)
			os.Exit(2)
		}
		cmds = append(cmds, &command{label: label, line: line})
	}
	for round := 0; round <= *runs; round++ {
		for _, c := range cmds {
			if err := c.run(round > 0); err != nil {
				fmt.Fprintf(os.Stderr, "interleave: %s failed: %v\n", c.label, err)
				os.Exit(1)
			}
		}
	}
	ref := sorted(cmds[len(cmds)-1].wall)[*runs/2]
	fmt.Printf("%-36s %10s %10s %10s %11s %8s\n", "command", "median", "min", "cpu", "max RSS", "ratio")
	for _, c := range cmds {
		wall := sorted(c.wall)
		fmt.Printf("%-36s %10s %10s %10s %7.1f MiB %8.3f\n", c.label, wall[*runs/2].Round(time.Millisecond),
			wall[0].Round(time.Millisecond), sorted(c.cpu)[*runs/2].Round(time.Millisecond),
			float64(c.rssKiB)/1024, float64(wall[*runs/2])/float64(ref))
	}
	fmt.Printf("(%d interleaved runs each, after one warm-up round; medians; ratios are of wall time to the last command)\n", *runs)
}
