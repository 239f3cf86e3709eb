package trail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

// Event is what a command records; Append turns events into entries.
type Event struct {
	Actor   string
	Action  string
	Subject string
	Details map[string]any
}

// ClockError reports a clock earlier than the trail's newest entry (T24): a
// clock set back must not revive anything that has expired.
type ClockError struct {
	Now, Last time.Time
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("the clock (%s) is earlier than the newest audit entry (%s)", e.Now.Format(time.RFC3339), e.Last.Format(time.RFC3339))
}

// maxAttempts bounds the conditional appends one Append tries, and
// maxBackoff the wait between two: about five seconds of contention at most.
const (
	maxAttempts = 64
	maxBackoff  = 100 * time.Millisecond
)

// conflicts counts the conditional appends this process lost to another
// writer.
var conflicts atomic.Int64

// Conflicts returns how many conditional appends this process lost to
// another writer and retried: the contention on the store.
func Conflicts() int64 { return conflicts.Load() }

// lockedAppender is a store that can append under its own lock (a local
// directory), so that appends never conflict.
type lockedAppender interface {
	AppendLocked(ctx context.Context, build func(n int64, last []byte) ([][]byte, error)) error
}

// build turns events into entries that follow last (the entry before seq n).
// Entry times never go backwards: a writer whose clock is a little behind
// the newest entry's writes that entry's time.
func build(n int64, last []byte, now time.Time, events []Event) ([]*audit.Entry, [][]byte, error) {
	prev := audit.GenesisPrev
	if last != nil {
		e, err := audit.ParseEntry(last)
		if err != nil {
			return nil, nil, fmt.Errorf("newest entry is unreadable: %v", err)
		}
		// Writers' clocks differ a little; a clock set back further
		// than that is refused.
		t, _ := time.Parse(time.RFC3339, e.Time)
		if now.Before(t.Add(-signature.ClockSkew)) {
			return nil, nil, &ClockError{Now: now, Last: t}
		}
		if now.Before(t) {
			now = t
		}
		prev = audit.ChainHex(last)
	}
	entries := make([]*audit.Entry, len(events))
	lines := make([][]byte, len(events))
	for i, ev := range events {
		details := ev.Details
		if details == nil {
			details = map[string]any{}
		}
		e := &audit.Entry{Seq: n + int64(i), Time: now.Format(time.RFC3339), Actor: ev.Actor, Action: ev.Action,
			Subject: ev.Subject, Details: details, Prev: prev}
		line, err := e.Marshal()
		if err != nil {
			return nil, nil, fmt.Errorf("audit entry %s: %v", ev.Action, err)
		}
		entries[i], lines[i] = e, line
		prev = audit.ChainHex(line)
	}
	return entries, lines, nil
}

// Append records events as consecutive entries at time now. It re-reads and
// retries when another writer appends first.
func Append(ctx context.Context, s Store, now time.Time, events ...Event) ([]*audit.Entry, error) {
	now = now.UTC().Truncate(time.Second)
	if la, ok := s.(lockedAppender); ok {
		var out []*audit.Entry
		err := la.AppendLocked(ctx, func(n int64, last []byte) ([][]byte, error) {
			entries, lines, err := build(n, last, now, events)
			out = entries
			return lines, err
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	var out []*audit.Entry
	for attempt := 0; len(events) > 0; attempt++ {
		if attempt == maxAttempts {
			return out, fmt.Errorf("%s: gave up after %d conditional appends lost to other writers (heavy contention); run the command again", s.URL(), attempt)
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		n, last, err := s.Head(ctx)
		if err != nil {
			return out, err
		}
		entries, lines, err := build(n, last, now, events)
		if err != nil {
			return out, fmt.Errorf("%s: %w", s.URL(), err)
		}
		written, err := s.Append(ctx, n, last, lines)
		out = append(out, entries[:written]...)
		events = events[written:]
		if errors.Is(err, ErrConflict) {
			conflicts.Add(1)
			// Back off exponentially, with full jitter and a cap, so that
			// racing writers spread out without waiting long.
			ceiling := min(time.Millisecond<<min(attempt, 7), maxBackoff)
			time.Sleep(time.Duration(rand.Int64N(int64(ceiling) + 1)))
			continue
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// DamagedError reports a trail that fails verification where a writer needs
// it intact.
type DamagedError struct {
	Store  string
	Report *audit.Report
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: the audit trail does not verify: %s", e.Store, e.Report.Problem)
}

// MakeCheckpoint verifies the trail's chain and computes the checkpoint of
// all its entries at time now. It refuses to commit to a damaged trail.
func MakeCheckpoint(ctx context.Context, s Store, now time.Time) (*audit.Checkpoint, error) {
	r, err := s.Entries(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep, err := audit.Verify(r, nil, audit.Options{KeepHashes: true})
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, &DamagedError{Store: s.URL(), Report: rep}
	}
	if rep.Entries == 0 {
		return nil, fmt.Errorf("%s: the audit trail is empty", s.URL())
	}
	root, err := tlog.TreeHash(rep.Entries, rep.Hashes)
	if err != nil {
		return nil, err
	}
	return &audit.Checkpoint{Origin: rep.Origin, Size: rep.Entries, Root: root, Time: now.UTC().Truncate(time.Second)}, nil
}

// StoreSigned stores a checkpoint with its signatures.
func StoreSigned(ctx context.Context, s Store, cp *audit.Checkpoint, sigs []*signature.Signature) error {
	files, err := SignatureFiles(sigs)
	if err != nil {
		return err
	}
	return s.PutCheckpoint(ctx, cp.Size, cp.Marshal(), files)
}

// SignatureFiles formats signatures as the files beside what they sign:
// ".asc" for OpenPGP, ".sig" for SSH.
func SignatureFiles(sigs []*signature.Signature) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, scheme := range []signature.Scheme{signature.OpenPGP, signature.SSH} {
		var these []*signature.Signature
		for _, sg := range sigs {
			if sg.Scheme == scheme {
				these = append(these, sg)
			}
		}
		if len(these) == 0 {
			continue
		}
		data, err := signature.Format(these)
		if err != nil {
			return nil, err
		}
		files[scheme.Ext()] = data
	}
	return files, nil
}

// VerifyConfig says how to judge a trail.
type VerifyConfig struct {
	Registry *signers.Registry // signers whose checkpoints count
	Roles    []string          // roles allowed to sign checkpoints; empty means any
	Now      time.Time
	Trusted  *audit.Checkpoint // a checkpoint the verifier already holds
	MaxAge   time.Duration     // the newest checkpoint may be at most this old; 0 means no limit
	Proofs   bool              // keep the tree's hashes for proofs
}

// Verify checks the trail in s: entries, tree, checkpoints and their
// signatures, and (with a trusted checkpoint) that the trail extends it.
// Checkpoints that no current registry signer vouches for, and malformed
// ones, are listed in Report.Ignored and play no other part (T35). An object
// store that shows an overwritten or deleted object gives a *TamperError.
func Verify(ctx context.Context, s Store, cfg VerifyConfig) (*audit.Report, error) {
	stored, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	var cps []*audit.SignedCheckpoint
	var malformed []audit.IgnoredCheckpoint
	for _, sc := range stored {
		cp, err := audit.ParseCheckpoint(sc.Body)
		if err != nil {
			malformed = append(malformed, audit.IgnoredCheckpoint{Name: sc.Name, Reason: fmt.Sprintf("malformed: %v", err)})
			continue
		}
		c := &audit.SignedCheckpoint{Checkpoint: cp, Name: sc.Name}
		judgeCheckpoint(c, sc, cfg)
		cps = append(cps, c)
	}
	r, err := s.Entries(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep, err := audit.Verify(r, cps, audit.Options{Trusted: cfg.Trusted, KeepHashes: cfg.Proofs})
	if err != nil {
		return nil, err
	}
	rep.Ignored = append(rep.Ignored, malformed...)
	Freshness(rep, cfg)
	return rep, nil
}

// Freshness fails a report whose newest trusted checkpoint is older than
// cfg.MaxAge, or newer than the clock allows.
func Freshness(rep *audit.Report, cfg VerifyConfig) {
	if rep.OK() && cfg.MaxAge > 0 && rep.Latest != nil && cfg.Now.Sub(rep.Latest.Time) > cfg.MaxAge {
		rep.Problem = fmt.Sprintf("the newest valid checkpoint (%s) is older than the policy's max_age of %s: the trail may be frozen", rep.Latest.Time.Format(time.RFC3339), cfg.MaxAge)
		rep.FirstBad = rep.Latest.Size
	}
	if rep.OK() && rep.Latest != nil && cfg.Now.Before(rep.Latest.Time.Add(-signature.ClockSkew)) {
		rep.Problem = fmt.Sprintf("the clock (%s) is earlier than the newest checkpoint (%s)", cfg.Now.Format(time.RFC3339), rep.Latest.Time.Format(time.RFC3339))
		rep.FirstBad = rep.Latest.Size
	}
}

// Judge parses a stored checkpoint and judges its signatures as Verify does:
// the result's Ignored says why they do not vouch for it, if they do not.
func Judge(sc StoredCheckpoint, cfg VerifyConfig) (*audit.SignedCheckpoint, error) {
	cp, err := audit.ParseCheckpoint(sc.Body)
	if err != nil {
		return nil, err
	}
	c := &audit.SignedCheckpoint{Checkpoint: cp, Name: sc.Name}
	judgeCheckpoint(c, sc, cfg)
	return c, nil
}

// judgeCheckpoint decides whether the checkpoint's signatures vouch for it:
// at least one valid signature, judged now, by a current registry signer
// with an allowed role. Anything less marks it ignored, with the reasons.
func judgeCheckpoint(cp *audit.SignedCheckpoint, sc StoredCheckpoint, cfg VerifyConfig) {
	var sigs []*signature.Signature
	var reasons []string
	for _, ext := range []string{".asc", ".sig"} {
		data, ok := sc.Sigs[ext]
		if !ok {
			continue
		}
		scheme, _ := signature.SchemeOfFile(ext)
		parsed, err := signature.Parse(scheme, data)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s%s: %v", sc.Name, ext, err))
			continue
		}
		sigs = append(sigs, parsed...)
	}
	switch {
	case len(sigs) == 0 && len(reasons) == 0:
		cp.Ignored = "not signed"
		return
	case len(sigs) == 0:
		cp.Ignored = strings.Join(reasons, "; ")
		return
	case cfg.Registry == nil:
		cp.Ignored = "no verified signers registry to judge its signatures"
		return
	}
	outcomes := cfg.Registry.Check(sc.Body, sigs, audit.CheckpointNamespace, cfg.Now, signers.Current)
	ids, err := signers.Count(outcomes, signers.Requirement{What: "checkpoint " + sc.Name, Roles: cfg.Roles, Threshold: 1})
	if err == nil {
		cp.Signers = ids
		return
	}
	var te *signers.ThresholdError
	if !errors.As(err, &te) || len(te.Rejected) == 0 {
		reasons = append(reasons, err.Error())
	} else {
		for _, o := range te.Rejected {
			reasons = append(reasons, o.Err.Error())
		}
	}
	cp.Ignored = strings.Join(reasons, "; ")
}

// Scan calls fn with each entry line whose bytes contain needle (all lines
// when needle is empty), in order; the line is only valid during the call.
// Bytes after the last complete line are a torn tail: every complete line is
// passed to fn first, then Scan returns a *TornError.
func Scan(ctx context.Context, s Store, needle []byte, fn func(line []byte) error) error {
	r, err := s.Entries(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(line) > audit.MaxEntrySize+1 {
			return fmt.Errorf("%s: entry %d is longer than %d bytes", s.URL(), n, audit.MaxEntrySize)
		}
		if err == io.EOF {
			if len(line) > 0 {
				return &TornError{Store: s.URL(), Bytes: int64(len(line))}
			}
			return nil
		}
		if err != nil {
			return err
		}
		line = line[:len(line)-1]
		if len(needle) == 0 || bytes.Contains(line, needle) {
			if err := fn(line); err != nil {
				return err
			}
		}
	}
}

// Writer appends events from many goroutines of one process, committing
// whatever is queued together with one write and one fsync (group commit).
// Append returns only once its entry is durable.
type Writer struct {
	s    Store
	now  func() time.Time
	reqs chan writeReq
	done chan struct{}
}

type writeReq struct {
	ctx context.Context
	ev  Event
	res chan writeRes
}

type writeRes struct {
	e   *audit.Entry
	err error
}

// NewWriter starts a group-commit writer for s; Close stops it.
func NewWriter(s Store, now func() time.Time) *Writer {
	w := &Writer{s: s, now: now, reqs: make(chan writeReq, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

const maxBatch = 4096

func (w *Writer) loop() {
	defer close(w.done)
	for r := range w.reqs {
		batch := []writeReq{r}
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		events := make([]Event, len(batch))
		for i, b := range batch {
			events[i] = b.ev
		}
		entries, err := Append(batch[0].ctx, w.s, w.now(), events...)
		for i, b := range batch {
			if err == nil && i < len(entries) {
				b.res <- writeRes{e: entries[i]}
			} else {
				b.res <- writeRes{err: err}
			}
		}
	}
}

// Append queues ev and waits until it is durable.
func (w *Writer) Append(ctx context.Context, ev Event) (*audit.Entry, error) {
	res := make(chan writeRes, 1)
	select {
	case w.reqs <- writeReq{ctx: ctx, ev: ev, res: res}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-res:
		return r.e, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the writer after the queued appends.
func (w *Writer) Close() {
	close(w.reqs)
	<-w.done
}
