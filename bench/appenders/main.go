// Command appenders measures local audit append throughput with many
// appenders: -procs processes each appending -n entries one at a time (each
// append takes the file lock, writes and fsyncs before it returns), and
// -goroutines goroutines sharing one group-commit writer in this process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/groundzero/groundzero/internal/trail"
)

func main() {
	dir := flag.String("dir", "", "local evidence store directory")
	procs := flag.Int("procs", 8, "appender processes")
	goroutines := flag.Int("goroutines", 64, "goroutines sharing one group-commit writer")
	n := flag.Int("n", 250, "entries per appender")
	child := flag.Bool("child", false, "internal: act as one appender process")
	flag.Parse()
	ev := trail.Event{Actor: "ci", Action: "gate", Subject: "manifest",
		Details: map[string]any{"ok": true, "detail": "a typical gate result of about a hundred bytes, more or less, of text"}}
	s, err := trail.OpenDir(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	if *child {
		for i := 0; i < *n; i++ {
			if _, err := trail.Append(ctx, s, time.Now(), ev); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		return
	}
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < *procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-child", "-dir", *dir, "-n", fmt.Sprint(*n))
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	fmt.Printf("%d processes x %d appends (lock, write, fsync each): %d entries in %s = %.0f entries/s\n",
		*procs, *n, *procs**n, d.Round(time.Millisecond), float64(*procs**n)/d.Seconds())

	w := trail.NewWriter(s, time.Now)
	start = time.Now()
	for g := 0; g < *goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < *n; i++ {
				if _, err := w.Append(ctx, ev); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	d = time.Since(start)
	fmt.Printf("%d goroutines x %d appends (group commit, fsync before acknowledgement): %d entries in %s = %.0f entries/s\n",
		*goroutines, *n, *goroutines**n, d.Round(time.Millisecond), float64(*goroutines**n)/d.Seconds())
}
