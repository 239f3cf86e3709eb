package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/strictyaml"
	"github.com/groundzero/groundzero/internal/trail"
)

// recorder collects a command's audit events and, when the command ends,
// appends them to the evidence store and closes with a checkpoint signed by
// the acting identity.
type recorder struct {
	a      *app
	r      *repo.Repo
	events []trail.Event
	actor  string
	signer sign.Signer // signs the checkpoint; nil means resolve the default key
}

func (a *app) recorder(r *repo.Repo) *recorder {
	return &recorder{a: a, r: r}
}

// add records an event; the actor is filled in when the events are written.
func (rec *recorder) add(action, subject string, details map[string]any) {
	rec.events = append(rec.events, trail.Event{Action: action, Subject: subject, Details: details})
}

// as sets the acting identity and the key that signs the checkpoint.
func (rec *recorder) as(s sign.Signer, sig *signature.Signature) {
	rec.signer = s
	if sig == nil {
		return
	}
	if chain, err := signers.Load(rec.r); err == nil {
		if who, _ := chain.Current().FindKey(sig); who != nil {
			rec.actor = who.ID
			return
		}
	}
	rec.actor = "key:" + sig.Issuer()
}

// keyOwner names the registered signer who owns the key a spec names, or ""
// when no signer does.
func (a *app) keyOwner(r *repo.Repo, spec sign.Spec) (string, error) {
	fpr, err := sign.Fingerprint(a.ctx, spec)
	if err != nil {
		return "", usage(err, "")
	}
	chain, err := signers.Load(r)
	if err != nil {
		return "", registryError(err)
	}
	if s := chain.Current().FindByFingerprint(fpr); s != nil {
		return s.ID, nil
	}
	return "", nil
}

func (a *app) defaultActor() string {
	if v := a.getenv("GROUNDZERO_ACTOR"); v != "" {
		return v
	}
	name := a.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = "unknown"
		}
	}
	host, _ := os.Hostname()
	return "user:" + name + "@" + host
}

// evidencePolicy returns the evidence store URL and retention from
// policy.yaml, or the defaults when the policy cannot be read.
func evidencePolicy(r *repo.Repo) (string, int) {
	data, err := r.ReadFile(repo.PolicyFile, strictyaml.MaxSize)
	if err != nil {
		return policy.DefaultEvidenceStore, policy.DefaultRetentionDays
	}
	p, err := policy.Parse(repo.PolicyFile, data)
	if err != nil {
		return policy.DefaultEvidenceStore, policy.DefaultRetentionDays
	}
	return p.Evidence.Store, p.Evidence.RetentionDays
}

// openStore opens the evidence store: override when given, else policy.yaml's.
// A store is opened (and, for object storage, probed) once per command.
func (a *app) openStore(r *repo.Repo, override string) (trail.Store, error) {
	url, days := evidencePolicy(r)
	if override != "" {
		url = override
	}
	base := ""
	if r != nil {
		base = r.Root
	}
	key := base + "\n" + url
	if s := a.stores[key]; s != nil {
		return s, nil
	}
	s, err := trail.Open(a.ctx, url, trail.Options{Base: base, RetentionDays: days})
	if err != nil {
		var ce *trail.CapabilityError
		if errors.As(err, &ce) {
			return nil, failed(err, "use a store that honours conditional writes (If-None-Match: *)")
		}
		return nil, usage(err, "check evidence.store in governance/policy.yaml (file://DIR or s3://BUCKET/PREFIX) and the store's credentials")
	}
	if a.stores == nil {
		a.stores = map[string]trail.Store{}
	}
	a.stores[key] = s
	return s, nil
}

// flush writes the events and a checkpoint. cmdErr is the command's own
// result: a failure to record never hides it.
func (rec *recorder) flush(cmdErr error) error {
	if len(rec.events) == 0 {
		return cmdErr
	}
	a := rec.a
	err := rec.write()
	if err == nil {
		return cmdErr
	}
	if cmdErr != nil {
		PrintError(a.stderr, fmt.Errorf("audit: %w", err))
		return cmdErr
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ce *trail.ClockError
	if errors.As(err, &ce) {
		return failed(fmt.Errorf("audit: %w", err), "fix the system clock; an earlier clock could revive expired approvals")
	}
	return usage(fmt.Errorf("audit: %w", err), "the evidence store must be reachable and writable; `groundzero audit verify` shows its state")
}

func (rec *recorder) write() error {
	a := rec.a
	store, err := a.openStore(rec.r, "")
	if err != nil {
		return err
	}
	if rec.signer == nil {
		spec, err := sign.Resolve("", a.getenv, func(k string) string { return rec.r.GitConfig(a.ctx, k) })
		if err == nil {
			rec.signer, _ = sign.New(spec, func() time.Time { return a.now })
			if rec.actor == "" && a.getenv("GROUNDZERO_ACTOR") == "" {
				rec.actor, _ = a.keyOwner(rec.r, spec)
			}
		}
	}
	signed, err := rec.commit(store)
	if err != nil {
		return err
	}
	if !signed {
		a.info("audit: %d entr%s recorded in %s; no signing key, so no checkpoint (set GROUNDZERO_KEY)", len(rec.events), plural(len(rec.events), "y", "ies"), store.URL())
	}
	return nil
}

// commit appends the events, then signs and stores a checkpoint when a key
// is available. It reports whether it did.
func (rec *recorder) commit(store trail.Store) (bool, error) {
	a := rec.a
	actor := rec.actor
	if actor == "" {
		actor = a.defaultActor()
	}
	for i := range rec.events {
		if rec.events[i].Actor == "" {
			rec.events[i].Actor = actor
		}
	}
	delete(a.histories, store) // what was read back is stale now
	if _, err := trail.Append(a.ctx, store, a.now, rec.events...); err != nil {
		return false, err
	}
	if rec.signer == nil {
		return false, nil
	}
	cp, err := trail.MakeCheckpoint(a.ctx, store, a.now)
	if err != nil {
		return false, err
	}
	sig, err := rec.signer.Sign(a.ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		return false, fmt.Errorf("signing the checkpoint: %w", err)
	}
	return true, trail.StoreSigned(a.ctx, store, cp, []*signature.Signature{sig})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
