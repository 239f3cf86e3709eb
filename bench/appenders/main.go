// Command appenders measures audit append throughput with many appenders.
//
// On a local store (-dir), -procs processes each append -n entries one at a
// time (each append takes the file lock, writes and fsyncs before it
// returns), then -goroutines goroutines share one group-commit writer in
// this process.
//
// On an object store (-store s3://… or gs://…), -procs processes each append
// -n entries one at a time with conditional writes and no coordinator; each
// process counts the conditional writes it lost to another (ErrConflict,
// after which trail.Append re-reads and retries). Then the trail is
// verified: it must hold exactly procs×n entries in one valid chain, and
// every process's entry i exactly once.
//
//	go run ./bench/appenders -dir DIR -procs 8 -n 250 -goroutines 64
//	go run ./bench/appenders -store 's3://B/P?endpoint=…&path_style=true' -procs 16 -n 200
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/trail"
)

// conflicts counts the appends a store refused because another writer
// took the seq first.
type conflicts struct {
	trail.Store
	n int
}

func (c *conflicts) Append(ctx context.Context, first int64, prevLast []byte, lines [][]byte) (int, error) {
	n, err := c.Store.Append(ctx, first, prevLast, lines)
	if errors.Is(err, trail.ErrConflict) {
		c.n++
	}
	return n, err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "appenders:", err)
	os.Exit(1)
}

func main() {
	dir := flag.String("dir", "", "local evidence store directory")
	store := flag.String("store", "", "object store URL (s3://, gs://)")
	procs := flag.Int("procs", 8, "appender processes")
	goroutines := flag.Int("goroutines", 64, "goroutines sharing one group-commit writer (-dir only)")
	n := flag.Int("n", 250, "entries per appender")
	child := flag.Int("child", -1, "internal: act as appender process number N")
	flag.Parse()
	ctx := context.Background()
	if (*dir == "") == (*store == "") {
		fmt.Fprintln(os.Stderr, "appenders: give one of -dir and -store")
		os.Exit(2)
	}
	if *store != "" {
		if *child >= 0 {
			appendObject(ctx, *store, *child, *n)
			return
		}
		objectStore(ctx, *store, *procs, *n)
		return
	}
	ev := trail.Event{Actor: "ci", Action: "gate", Subject: "manifest",
		Details: map[string]any{"ok": true, "detail": "a typical gate result of about a hundred bytes, more or less, of text"}}
	s, err := trail.OpenDir(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *child >= 0 {
		for i := 0; i < *n; i++ {
			if _, err := trail.Append(ctx, s, time.Now(), ev); err != nil {
				fail(err)
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
			cmd := exec.Command(os.Args[0], "-child", fmt.Sprint(p), "-dir", *dir, "-n", fmt.Sprint(*n))
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fail(err)
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
					fail(err)
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

// appendObject is one appender process on an object store: n appends of
// one entry each, naming the process and the entry's number. It prints the
// number of conflicts it met.
func appendObject(ctx context.Context, url string, proc, n int) {
	s, err := trail.Open(ctx, url, trail.Options{})
	if err != nil {
		fail(err)
	}
	c := &conflicts{Store: s}
	for i := 0; i < n; i++ {
		ev := trail.Event{Actor: "ci:runner-" + strconv.Itoa(proc), Action: "gate", Subject: "manifest",
			Details: map[string]any{"ok": true, "proc": proc, "i": i}}
		if _, err := trail.Append(ctx, c, time.Now(), ev); err != nil {
			fail(fmt.Errorf("process %d, append %d: %w", proc, i, err))
		}
	}
	fmt.Println(c.n)
}

// number reads a whole number from an entry's details.
func number(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(string(x))
		return i, err == nil
	case float64:
		return int(x), x == float64(int(x))
	}
	return 0, false
}

func objectStore(ctx context.Context, url string, procs, n int) {
	s, err := trail.Open(ctx, url, trail.Options{})
	if err != nil {
		fail(err)
	}
	before, _, err := s.Head(ctx)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	lost := 0
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-child", fmt.Sprint(p), "-store", url, "-n", fmt.Sprint(n))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				fail(fmt.Errorf("process %d: %v", p, err))
			}
			k, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				fail(fmt.Errorf("process %d printed %q", p, out))
			}
			mu.Lock()
			lost += k
			mu.Unlock()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	total := procs * n
	fmt.Printf("%d processes x %d appends to %s: %d entries in %s = %.0f entries/s; %d conditional-write conflicts (%.2f per entry), each re-read and retried\n",
		procs, n, s.URL(), total, d.Round(time.Millisecond), float64(total)/d.Seconds(), lost, float64(lost)/float64(total))

	// The whole trail: one valid chain, of the entries before and exactly
	// these.
	rep, err := trail.Verify(ctx, s, trail.VerifyConfig{Now: time.Now()})
	if err != nil {
		fail(err)
	}
	if !rep.OK() {
		fail(fmt.Errorf("the trail does not verify: %s", rep.Problem))
	}
	if rep.Entries != before+int64(total) {
		fail(fmt.Errorf("the trail has %d entries, want %d", rep.Entries, before+int64(total)))
	}
	seen := make([][]int, procs)
	for p := range seen {
		seen[p] = make([]int, n)
	}
	r, err := s.EntriesFrom(ctx, before)
	if err != nil {
		fail(err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, audit.MaxEntrySize+1)
	for sc.Scan() {
		e, err := audit.ParseEntry(bytes.Clone(sc.Bytes()))
		if err != nil {
			fail(err)
		}
		p, pok := number(e.Details["proc"])
		i, iok := number(e.Details["i"])
		if !pok || !iok || p < 0 || p >= procs || i < 0 || i >= n {
			fail(fmt.Errorf("entry %d is not one of this run's", e.Seq))
		}
		seen[p][i]++
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	var bad []string
	for p := range seen {
		for i, k := range seen[p] {
			if k != 1 {
				bad = append(bad, fmt.Sprintf("process %d entry %d appears %d times", p, i, k))
			}
		}
	}
	if len(bad) > 0 {
		fail(errors.New(strings.Join(bad[:min(len(bad), 10)], "; ")))
	}
	fmt.Printf("trail.Verify: OK, %d entries (%d new), one chain; each process's %d entries appear exactly once\n", rep.Entries, total, n)
}
