// Command conftest compares `groundzero policy check --plan` with conftest
// running the rules that `groundzero policy export` writes, on the same plan
// files. Both must report the same (address, rule) findings; then the two
// commands run interleaved (groundzero, conftest, conftest, groundzero, …),
// and the medians of wall time and of peak RSS are reported per plan, with
// their ratio to conftest.
//
//	go run ./bench/conftest -runs 5 \
//	  -groundzero 'bin/groundzero -C REPO policy check --env prod --plan {}' \
//	  -conftest '.tools/bin/conftest test {} -p EXPORT/policy --data EXPORT/data.json --namespace groundzero.parity' \
//	  plan-1000.json plan-10000.json
//
// {} stands for the plan file; arguments are split on spaces.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

type sample struct {
	wall   time.Duration
	rssKiB int64
}

// run runs argv (with {} replaced by plan) and measures it; exit status 1
// (findings) is expected.
func run(template, plan string, extra ...string) (sample, []byte, error) {
	args := strings.Fields(strings.ReplaceAll(template, "{}", plan))
	args = append(args, extra...)
	cmd := exec.Command(args[0], args[1:]...)
	start := time.Now()
	out, err := cmd.Output()
	s := sample{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKiB = ru.Maxrss
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil
	}
	if err != nil {
		return s, out, fmt.Errorf("%s: %v", strings.Join(args, " "), err)
	}
	return s, out, nil
}

// findings lists the (level, address, rule) findings of each tool.
func groundzeroFindings(template, plan string) (map[string]bool, error) {
	_, out, err := run(template, plan, "--format", "json")
	if err != nil {
		return nil, err
	}
	var r struct {
		Violations []struct{ Address, Rule string } `json:"violations"`
		Warnings   []struct{ Address, Rule string } `json:"warnings"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, v := range r.Violations {
		set["deny "+v.Address+" "+v.Rule] = true
	}
	for _, v := range r.Warnings {
		set["warn "+v.Address+" "+v.Rule] = true
	}
	return set, nil
}

func conftestFindings(template, plan string) (map[string]bool, error) {
	_, out, err := run(template, plan, "--output", "json")
	if err != nil {
		return nil, err
	}
	var rs []struct {
		Failures []struct{ Metadata map[string]any } `json:"failures"`
		Warnings []struct{ Metadata map[string]any } `json:"warnings"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, r := range rs {
		for _, f := range r.Failures {
			set[fmt.Sprintf("deny %v %v", f.Metadata["address"], f.Metadata["rule"])] = true
		}
		for _, f := range r.Warnings {
			set[fmt.Sprintf("warn %v %v", f.Metadata["address"], f.Metadata["rule"])] = true
		}
	}
	return set, nil
}

func median(s []sample) (time.Duration, int64) {
	walls := make([]time.Duration, len(s))
	rss := make([]int64, len(s))
	for i, x := range s {
		walls[i], rss[i] = x.wall, x.rssKiB
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	return walls[len(walls)/2], rss[len(rss)/2]
}

func main() {
	runs := flag.Int("runs", 5, "timed runs of each command per plan")
	gz := flag.String("groundzero", "", "groundzero command; {} is the plan file")
	cf := flag.String("conftest", "", "conftest command; {} is the plan file")
	flag.Parse()
	if *gz == "" || *cf == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: conftest -groundzero CMD -conftest CMD [-runs N] PLAN.json ...")
		os.Exit(2)
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "bench/conftest:", err)
		os.Exit(1)
	}
	fmt.Printf("%-18s %9s %11s %11s %9s %11s %11s %9s\n", "plan", "findings", "groundzero", "conftest", "time", "groundzero", "conftest", "RSS")
	fmt.Printf("%-18s %9s %11s %11s %9s %11s %11s %9s\n", "", "", "median", "median", "ratio", "peak RSS", "peak RSS", "ratio")
	for _, plan := range flag.Args() {
		g, err := groundzeroFindings(*gz, plan)
		if err != nil {
			fail(err)
		}
		c, err := conftestFindings(*cf, plan)
		if err != nil {
			fail(err)
		}
		for k := range g {
			if !c[k] {
				fail(fmt.Errorf("%s: groundzero finds %q, conftest does not", plan, k))
			}
		}
		for k := range c {
			if !g[k] {
				fail(fmt.Errorf("%s: conftest finds %q, groundzero does not", plan, k))
			}
		}
		var gs, cs []sample
		for i := 0; i < *runs; i++ {
			// Interleaved, alternating which goes first.
			order := []string{*gz, *cf}
			if i%2 == 1 {
				order = []string{*cf, *gz}
			}
			for _, t := range order {
				s, _, err := run(t, plan)
				if err != nil {
					fail(err)
				}
				if t == *gz {
					gs = append(gs, s)
				} else {
					cs = append(cs, s)
				}
			}
		}
		gw, gr := median(gs)
		cw, cr := median(cs)
		fmt.Printf("%-18s %9d %11s %11s %9.2f %7.0f MiB %7.0f MiB %9.2f\n", filepath.Base(plan), len(g),
			gw.Round(time.Millisecond), cw.Round(time.Millisecond), float64(gw)/float64(cw),
			float64(gr)/1024, float64(cr)/1024, float64(gr)/float64(cr))
	}
}
