// Command gentrail appends N synthetic entries of about 300 bytes to an audit
// trail, for benchmarks.
//
//	go run ./bench/gentrail -n 1000000 -dir REPO/.groundzero/evidence
//	go run ./bench/gentrail -n 100000 -total -store 's3://B/P?endpoint=…&path_style=true' -key gpg:FPR
//
// With -dir it appends to a local store in batches. With -store it extends
// the trail in an object store: it reads the newest entry, builds the chain
// from it (-total: up to n entries in all), and writes the entry objects directly, -parallel at a time (each
// written once, with If-None-Match: *, as every appender writes them). With
// -key it then signs a checkpoint of the whole trail, stored with its state
// bundle, as a command that closes with a checkpoint does (the entries it
// wrote are summed up as written, not fetched back).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
)

func main() {
	n := flag.Int("n", 1_000_000, "entries to append")
	dir := flag.String("dir", "", "local evidence store directory")
	store := flag.String("store", "", "evidence store URL (s3://, gs://), written directly")
	parallel := flag.Int("parallel", 64, "concurrent object writes with -store")
	key := flag.String("key", "", "KEYSPEC that signs a checkpoint of the trail when done (-store only)")
	total := flag.Bool("total", false, "with -store, append until the trail has n entries")
	flag.Parse()
	ctx := context.Background()
	var err error
	switch {
	case (*dir == "") == (*store == ""):
		fmt.Fprintln(os.Stderr, "gentrail: give one of -dir and -store")
		os.Exit(2)
	case *dir != "":
		err = local(ctx, *dir, *n)
	default:
		err = object(ctx, *store, *n, *total, *parallel, *key)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentrail:", err)
		os.Exit(1)
	}
}

// event is the synthetic entry number i: a gate result.
func event(i int) trail.Event {
	return trail.Event{Actor: "ci:runner-17", Action: "gate", Subject: "manifest",
		Details: map[string]any{"ok": true, "detail": "2000 governed file(s) match governance/MANIFEST; signed by alice", "run": i, "pad": strings.Repeat("x", 4)}}
}

func local(ctx context.Context, dir string, n int) error {
	s, err := trail.OpenDir(dir)
	if err != nil {
		return err
	}
	const batch = 10_000
	now := time.Now()
	for done := 0; done < n; {
		k := min(batch, n-done)
		events := make([]trail.Event, k)
		for i := range events {
			events[i] = event(done + i)
		}
		if _, err := trail.Append(ctx, s, now, events...); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func object(ctx context.Context, url string, n int, total bool, parallel int, key string) error {
	var signer sign.Signer
	if key != "" {
		spec, err := sign.ParseSpec(key)
		if err != nil {
			return err
		}
		if signer, err = sign.New(spec, time.Now); err != nil {
			return err
		}
	}
	s, err := trail.Open(ctx, url, trail.Options{})
	if err != nil {
		return err
	}
	first, last, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if total {
		n = max(n-int(first), 0)
	}
	// The entries there already, for the checkpoint, read while the
	// listing is short.
	var prior []byte
	if signer != nil && first > 0 {
		r, err := s.Entries(ctx)
		if err != nil {
			return err
		}
		br := bufio.NewReader(r)
		for k := int64(0); k < first; k++ {
			line, err := br.ReadBytes('\n')
			if err != nil {
				r.Close()
				return fmt.Errorf("entry %d: %v", k, err)
			}
			prior = append(prior, line...)
		}
		r.Close()
	}
	// The chain continues from the newest entry, at a time no earlier.
	now := time.Now().UTC().Truncate(time.Second)
	prev := audit.GenesisPrev
	if last != nil {
		e, err := audit.ParseEntry(last)
		if err != nil {
			return fmt.Errorf("newest entry: %v", err)
		}
		if t, _ := time.Parse(time.RFC3339, e.Time); now.Before(t) {
			now = t
		}
		prev = audit.ChainHex(last)
	}
	lines := make([][]byte, n)
	for i := range lines {
		ev := event(i)
		e := &audit.Entry{Seq: first + int64(i), Time: now.Format(time.RFC3339), Actor: ev.Actor, Action: ev.Action,
			Subject: ev.Subject, Details: ev.Details, Prev: prev}
		if lines[i], err = e.Marshal(); err != nil {
			return err
		}
		prev = audit.ChainHex(lines[i])
	}
	// Disjoint runs of seqs, written side by side: each entry is one
	// conditional PutObject, so no two writers can claim the same seq.
	const chunk = 64
	start := time.Now()
	next := make(chan int)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := min(i+chunk, n)
				if _, err := s.Append(ctx, first+int64(i), nil, lines[i:j]); err != nil {
					errs <- fmt.Errorf("entries %d–%d: %w", first+int64(i), first+int64(j)-1, err)
					return
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for i := 0; i < n; i += chunk {
			select {
			case next <- i:
			case err := <-errs:
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gentrail: %d entries written to %s in %s (entries %d–%d)\n", n, s.URL(), time.Since(start).Round(time.Millisecond), first, first+int64(n)-1)
	if signer == nil {
		return nil
	}
	start = time.Now()
	// The checkpoint sums up the trail from its first entry: the entries
	// that were there as read before, the ones just written as written.
	cp, st, err := anchor.MakeCheckpoint(ctx, &written{Store: s, prior: prior, lines: lines}, time.Now(), nil)
	if err != nil {
		return err
	}
	sig, err := signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		return err
	}
	if err := anchor.StoreSigned(ctx, s, cp, st, []*signature.Signature{sig}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gentrail: signed checkpoint of %d entries, with its state bundle, in %s\n", cp.Size, time.Since(start).Round(time.Millisecond))
	return nil
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// written is a store whose entries are those read before (prior) and the
// lines just written, so that summing the trail up fetches nothing back.
type written struct {
	trail.Store
	prior []byte
	lines [][]byte
}

func (w *written) EntriesFrom(ctx context.Context, from int64) (io.ReadCloser, error) {
	if from != 0 {
		return nil, fmt.Errorf("gentrail: entries from %d: only the whole trail is kept", from)
	}
	buf := bytes.NewBuffer(append([]byte(nil), w.prior...))
	for _, l := range w.lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return io.NopCloser(buf), nil
}

func (w *written) Entries(ctx context.Context) (io.ReadCloser, error) { return w.EntriesFrom(ctx, 0) }
