// Command s3check times commands that use an object store, interleaved (one
// run of each in turn, so that drift in the machine's speed touches them
// all alike), and counts the requests each run makes from the request log
// that bench/s3proxy writes. It reports each command's median wall time and
// its requests per run, and the requests and the gateway's time by S3
// operation and the store directory they touch.
//
//	go run ./bench/s3check -runs 5 -log DIR/requests.log '100=gz -C A check' '100000=gz -C B check'
//
// Each command runs once to warm caches first; every run must succeed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

type command struct {
	label, line string
	times       []time.Duration
	requests    []map[string]int           // per run: "Op dir" counts, "" the total
	server      []map[string]time.Duration // per run: the gateway's time by "Op dir"
}

// run runs one command and returns its wall time and the requests it made.
func run(c *command, log *os.File) (time.Duration, map[string]int, map[string]time.Duration, error) {
	cmd := exec.Command("sh", "-c", c.line)
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	counts := map[string]int{}
	server := map[string]time.Duration{}
	sc := bufio.NewScanner(log) // the log from where the last read stopped
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			continue
		}
		op, key := f[0], f[1]
		us, _ := strconv.ParseInt(f[2], 10, 64)
		counts[""]++
		counts[op+" "+dir(key)]++
		server[op+" "+dir(key)] += time.Duration(us) * time.Microsecond
	}
	if err == nil {
		err = sc.Err()
	}
	return d, counts, server, err
}

// dir names the store directory a key is in: entries, states, checkpoints…
func dir(key string) string {
	parts := strings.Split(strings.Trim(key, "/"), "/")
	for _, p := range parts {
		switch p {
		case "entries", "states", "checkpoints", "probe", "artifacts":
			return p + "/"
		}
	}
	return "(bucket)"
}

func median(xs []int) int {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}

func main() {
	runs := flag.Int("runs", 5, "timed runs per command")
	logPath := flag.String("log", "", "the request log bench/s3proxy writes")
	flag.Parse()
	if flag.NArg() < 1 || *logPath == "" {
		fmt.Fprintln(os.Stderr, "usage: s3check [-runs N] -log FILE 'label=command' ...")
		os.Exit(2)
	}
	log, err := os.Open(*logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3check:", err)
		os.Exit(2)
	}
	if _, err := log.Seek(0, io.SeekEnd); err != nil {
		fmt.Fprintln(os.Stderr, "s3check:", err)
		os.Exit(2)
	}
	var cmds []*command
	for _, arg := range flag.Args() {
		label, line, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "s3check: %q is not label=command\n", arg)
			os.Exit(2)
		}
		cmds = append(cmds, &command{label: label, line: line})
	}
	for round := -1; round < *runs; round++ {
		for _, c := range cmds {
			d, counts, server, err := run(c, log)
			if err != nil {
				fmt.Fprintf(os.Stderr, "s3check: %s failed: %v\n", c.label, err)
				os.Exit(1)
			}
			if round >= 0 {
				c.times = append(c.times, d)
				c.requests = append(c.requests, counts)
				c.server = append(c.server, server)
			}
		}
	}
	// Every operation and directory any run touched, in a stable order.
	keys := map[string]bool{}
	for _, c := range cmds {
		for _, r := range c.requests {
			for k := range r {
				if k != "" {
					keys[k] = true
				}
			}
		}
	}
	var detail []string
	for k := range keys {
		detail = append(detail, k)
	}
	sort.Strings(detail)

	fmt.Printf("%-12s %10s %10s %10s %14s\n", "", "median", "min", "requests", "requests range")
	for _, c := range cmds {
		ts := append([]time.Duration(nil), c.times...)
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		var total []int
		for _, r := range c.requests {
			total = append(total, r[""])
		}
		lo, hi := total[0], total[0]
		for _, t := range total {
			lo, hi = min(lo, t), max(hi, t)
		}
		fmt.Printf("%-12s %10s %10s %10d %14s\n", c.label, ts[len(ts)/2].Round(time.Millisecond), ts[0].Round(time.Millisecond),
			median(total), fmt.Sprintf("%d–%d", lo, hi))
	}
	fmt.Printf("\nrequests per run by operation and directory (median over runs)\n%-40s", "")
	for _, c := range cmds {
		fmt.Printf(" %10s", c.label)
	}
	fmt.Println()
	for _, k := range detail {
		fmt.Printf("%-40s", k)
		for _, c := range cmds {
			var xs []int
			for _, r := range c.requests {
				xs = append(xs, r[k])
			}
			fmt.Printf(" %10d", median(xs))
		}
		fmt.Println()
	}
	fmt.Printf("\ngateway time per run by operation and directory (median over runs)\n%-40s", "")
	for _, c := range cmds {
		fmt.Printf(" %10s", c.label)
	}
	fmt.Println()
	for _, k := range detail {
		fmt.Printf("%-40s", k)
		for _, c := range cmds {
			var xs []int
			for _, r := range c.server {
				xs = append(xs, int(r[k]))
			}
			fmt.Printf(" %10s", time.Duration(median(xs)).Round(100*time.Microsecond))
		}
		fmt.Println()
	}
}
