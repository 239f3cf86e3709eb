package anchor

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/s3gateway"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv("GZ_RUNNER"); spec != "" {
		os.Exit(runner(spec))
	}
	os.Exit(m.Run())
}

// runner is one CI runner: it appends its events one at a time to the
// store and, every few, reads the anchor and checkpoints as commands do.
// spec is "URL,ID,COUNT,KEYDIR"; it prints "ack SEQ" per entry and the
// conflicts it lost.
func runner(spec string) int {
	parts := strings.Split(spec, ",")
	id, _ := strconv.Atoi(parts[1])
	count, _ := strconv.Atoi(parts[2])
	ctx := context.Background()
	s, err := trail.Open(ctx, parts[0], trail.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	yaml, err := os.ReadFile(filepath.Join(parts[3], "signers.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	reg, err := signers.Parse("signers.yaml", yaml)
	if err == nil {
		err = reg.LoadKeys(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(parts[3], rel)) })
	}
	signer, err2 := sign.New(sign.Spec{Kind: "file", Value: filepath.Join(parts[3], "runner")}, time.Now)
	if err != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, err, err2)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for i := 0; i < count; i++ {
		es, err := trail.Append(ctx, s, time.Now(), trail.Event{Actor: "runner", Action: "test.append", Subject: "x",
			Details: map[string]any{"runner": id, "i": i}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "ack %d\n", es[0].Seq)
		if i%5 != 4 {
			continue
		}
		ix, err := Read(ctx, s, trail.VerifyConfig{Registry: reg, Now: time.Now()}, true)
		if err != nil || !ix.Report.OK() {
			fmt.Fprintln(os.Stderr, "anchor:", err, ix.Report.Problem)
			return 1
		}
		cp, st, err := MakeCheckpoint(ctx, s, time.Now(), ix)
		if err != nil {
			fmt.Fprintln(os.Stderr, "checkpoint:", err)
			return 1
		}
		sig, err := signer.Sign(ctx, cp.Marshal(), audit.CheckpointNamespace)
		if err == nil {
			err = StoreSigned(ctx, s, cp, st, []*signature.Signature{sig})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "store checkpoint:", err)
			return 1
		}
	}
	fmt.Fprintf(out, "conflicts %d\n", trail.Conflicts())
	return 0
}

// runnerKeys makes a registry with one runner signer, in a directory a
// runner process reads.
func runnerKeys(t *testing.T) (string, *signers.Registry) {
	t.Helper()
	_, reg, dir := keyFiles(t, "runner")
	return dir, reg
}

// Many CI runners append to one S3 store at once, each checkpointing from
// the anchor as it goes: no entry lost or duplicated, one valid chain, and
// every checkpoint consistent with every other (acceptance 2 of the
// evidence-store issue at test size; bench/run s3append runs 16 × 200).
func TestConcurrentRunnersOnS3(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "race", true)
	url := g.URL("race", "trail")
	keys, reg := runnerKeys(t)
	const procs, each = 16, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conflicts int
	acks := map[string]bool{}
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("GZ_RUNNER=%s,%d,%d,%s", url, p, each, keys))
			out, err := cmd.Output()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Errorf("runner %d: %v: %s", p, err, stderr)
				return
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if n, ok := strings.CutPrefix(line, "conflicts "); ok {
					c, _ := strconv.Atoi(n)
					conflicts += c
				} else if acks[line] {
					t.Errorf("seq acknowledged twice: %s", line)
				} else {
					acks[line] = true
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ctx := context.Background()
	s, err := trail.Open(ctx, url, trail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := trail.Verify(ctx, s, trail.VerifyConfig{Registry: reg, Now: time.Now()})
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %v, %+v", err, rep)
	}
	if rep.Entries != procs*each || len(acks) != procs*each {
		t.Fatalf("%d entries, %d acknowledged; want %d", rep.Entries, len(acks), procs*each)
	}
	if want := procs * (each / 5); rep.CheckpointsValid < want/2 {
		t.Errorf("%d valid checkpoints, want most of the %d made", rep.CheckpointsValid, want)
	}
	seen := map[string]bool{}
	trail.Scan(ctx, s, []byte(`"test.append"`), func(line []byte) error {
		e, _ := audit.ParseEntry(line)
		k := fmt.Sprint(e.Details["runner"], "/", e.Details["i"])
		if seen[k] {
			t.Errorf("event %s recorded twice", k)
		}
		seen[k] = true
		return nil
	})
	if len(seen) != procs*each {
		t.Errorf("%d distinct events, want %d", len(seen), procs*each)
	}
	full, err := ReadFull(ctx, s, trail.VerifyConfig{Registry: reg, Now: time.Now()}, true)
	if err != nil || !full.Report.OK() {
		t.Fatalf("ReadFull = %v, %q", err, full.Report.Problem)
	}
	t.Logf("%d entries, %d checkpoints, %d conditional appends lost and retried", rep.Entries, rep.CheckpointsValid, conflicts)
}

// countingTransport counts the requests a store makes.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// Reading the anchor and checkpointing make the same number of requests on
// a trail of 60 entries as on one of 1,200: the work does not grow with the
// history (acceptance 1 at test size; bench/run s3check measures 100 to
// 100,000 entries through the whole command).
func TestAnchorRequestsDoNotGrowWithTheTrail(t *testing.T) {
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "evidence", true)
	alice, reg := key(t, "alice")
	ctx := context.Background()
	counts := map[int]int64{}
	for _, size := range []int{60, 1200} {
		raw := g.URL("evidence", fmt.Sprintf("trail%d", size))
		s, err := trail.Open(ctx, raw, trail.Options{})
		if err != nil {
			t.Fatal(err)
		}
		events := make([]trail.Event, size)
		for i := range events {
			events[i] = trail.Event{Actor: "ci", Action: "gate", Subject: "x", Details: map[string]any{"i": i}}
		}
		for i := 0; i < size; i += 100 {
			if _, err := trail.Append(ctx, s, t0, events[i:min(i+100, size)]...); err != nil {
				t.Fatal(err)
			}
		}
		stateCheckpoint(t, s, alice, t0, nil)
		// A command: open, read the anchor, append its events,
		// checkpoint from the anchor.
		ct := &countingTransport{}
		u, _ := url.Parse(raw)
		s2, err := trail.OpenS3(ctx, u, trail.S3Options{HTTPClient: &http.Client{Transport: ct}})
		if err != nil {
			t.Fatal(err)
		}
		ix, err := Read(ctx, s2, trail.VerifyConfig{Registry: reg, Now: t0}, true)
		if err != nil || !ix.Report.OK() || ix.Report.Entries != int64(size) {
			t.Fatalf("Read(%d) = %v, %+v", size, err, ix.Report)
		}
		if _, err := trail.Append(ctx, s2, t0, trail.Event{Actor: "ci", Action: "gate", Subject: "y"}); err != nil {
			t.Fatal(err)
		}
		stateCheckpoint(t, s2, alice, t0, ix)
		counts[size] = ct.n.Load()
	}
	if d := counts[1200] - counts[60]; d < -2 || d > 2 {
		t.Errorf("requests per command: %d at 60 entries, %d at 1,200; want the same", counts[60], counts[1200])
	}
	t.Logf("requests per command: %v", counts)
}
