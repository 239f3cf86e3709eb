package govern_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// T25: an action whose audit entry cannot be recorded does not happen. The
// intent's consumption is recorded before OpenTofu runs; when the evidence
// store refuses it, Apply fails and nothing is applied.
func TestApplyWithoutRecordedEntryDoesNothing(t *testing.T) {
	dir, key := governedRepo(t)
	gz(t, dir, "plan", "--env", "dev")
	planFile := filepath.Join(dir, ".groundzero", "plans", "dev.tfplan")
	intentRel := strings.TrimSpace(gz(t, dir, "intent", "new", "--env", "dev", "--action", "apply", "--reason", "r", "--plan", planFile, "--key", key))
	r, err := repo.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := trail.OpenDir(r.Abs(".groundzero/evidence"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refused := errors.New("the evidence store refused the write")
	gr, err := govern.Open(ctx, govern.Config{
		Repo: r, Now: time.Now().UTC(), Env: "dev", Getenv: os.Getenv, Environ: os.Environ(),
		Anchor: func() (*anchor.Index, error) {
			chain, err := signers.Load(r)
			if err != nil {
				return nil, err
			}
			return anchor.Read(ctx, store, trail.VerifyConfig{Registry: chain.Current(), Now: time.Now()}, false)
		},
		Record:   func([]govern.Event) error { return refused },
		Artifact: func(string, []byte) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Close()
	if ok, err := gr.Static(ctx, false, "dev"); !ok || err != nil {
		t.Fatalf("Static = %v, %v: %+v", ok, err, gr.Results)
	}
	idata, err := os.ReadFile(filepath.Join(dir, intentRel))
	if err != nil {
		t.Fatal(err)
	}
	in, err := intent.Parse(idata)
	if err != nil {
		t.Fatal(err)
	}
	done, err := gr.Apply(ctx, govern.ApplyRequest{
		Intent:  govern.IntentFile{Intent: in, Data: idata, Rel: intentRel},
		Plan:    planFile,
		Confirm: func(string, string) error { return nil },
	})
	if !errors.Is(err, refused) || done != nil {
		t.Fatalf("Apply with an unrecordable entry = %+v, %v; want %v and nothing applied", done, err, refused)
	}
	if _, err := os.Stat(filepath.Join(dir, "infra", "bootstrap", "terraform.tfstate")); !os.IsNotExist(err) {
		t.Errorf("state after a refused record: %v, want none", err)
	}
}

// With no anchor there is no window; an index with no windows says none
// was ever opened.
func TestCurrentWindowNone(t *testing.T) {
	if _, err := govern.CurrentWindow(nil, nil, nil, time.Now()); err == nil {
		t.Error("CurrentWindow(nil anchor) = nil error")
	}
	var no *breakglass.NoWindowError
	if _, err := govern.CurrentWindow(&anchor.Index{}, nil, nil, time.Now()); !errors.As(err, &no) || no.Last != nil {
		t.Errorf("CurrentWindow(empty) = %v, want NoWindowError with no last window", err)
	}
	if h := govern.WindowHint(&breakglass.UnverifiedError{ID: "x", Reason: "y"}); !strings.Contains(h, "an entry alone opens nothing") {
		t.Errorf("WindowHint(unverified) = %q", h)
	}
}
