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
)

// T25: an action whose audit entry cannot be recorded does not happen. The
// intent's consumption is recorded before OpenTofu runs; when the evidence
// store refuses it, Apply fails and nothing is applied.
func TestApplyWithoutRecordedEntryDoesNothing(t *testing.T) {
	dir, key := governedRepo(t)
	gz(t, dir, "plan", "--env", "dev")
	planFile := filepath.Join(dir, ".groundzero", "plans", "dev.tfplan")
	intentRel := strings.TrimSpace(gz(t, dir, "intent", "new", "--env", "dev", "--action", "apply", "--reason", "r", "--plan", planFile, "--key", key))
	refused := errors.New("the evidence store refused the write")
	gr := openRun(t, dir, func([]govern.Event) error { return refused })
	ctx := context.Background()
	if ok, err := gr.Static(ctx, false, "dev"); !ok || err != nil {
		t.Fatalf("Static = %v, %v: %+v", ok, err, gr.Results)
	}
	done, err := gr.Apply(ctx, govern.ApplyRequest{
		Intent:  readIntent(t, dir, intentRel),
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
