package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

// recorder collects a command's audit events and, when the command ends,
// appends them to the evidence store and closes with a checkpoint signed by
// the acting identity.
type recorder struct {
	a      *app
	r      *repo.Repo
	events []trail.Event
	signer sign.Signer          // the command's own signing key, set by as
	sig    *signature.Signature // a signature it made, to tell whose key it is
	// actor, when set, is who the command verified is acting (a CI
	// runner, by its ID token); it is the actor of every entry, while the
	// checkpoint is still signed as usual.
	actor string
	// appended are the entries write appended, for --format json.
	appended []*audit.Entry
}

func (a *app) recorder(r *repo.Repo) *recorder {
	return &recorder{a: a, r: r}
}

// add records an event; the actor is filled in when the events are written.
func (rec *recorder) add(action, subject string, details map[string]any) {
	rec.events = append(rec.events, trail.Event{Action: action, Subject: subject, Details: details})
}

// as offers the key the command signed with (sig is one of its signatures)
// for the checkpoint: it signs the checkpoint when its owner is a registry
// signer who may sign checkpoints.
func (rec *recorder) as(s sign.Signer, sig *signature.Signature) {
	rec.signer, rec.sig = s, sig
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

// unverifiedActor names whoever runs an unsigned command. It never counts
// for anything: only a key in the registry makes an identity.
func (a *app) unverifiedActor() string {
	name := a.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = "unknown"
		}
	}
	host, _ := os.Hostname()
	return "unverified:" + name + "@" + host
}

// checkpointKey is the key that signs checkpoints by default
// (GROUNDZERO_KEY, then git's user.signingkey) and its owner.
type checkpointKey struct {
	spec   sign.Spec
	signer sign.Signer
	owner  string
}

// defaultKey resolves the default checkpoint key, once. A key that is not
// a registry signer allowed to sign checkpoints is refused (T35): a
// checkpoint by a foreign key would be ignored by every verifier, and on
// WORM storage could never be removed. A registry with no signers yet (a
// repository being set up) signs no checkpoints.
func (a *app) defaultKey(r *repo.Repo) (*checkpointKey, error) {
	if a.ckey != nil || a.ckeyErr != nil {
		return a.ckey, a.ckeyErr
	}
	a.ckey, a.ckeyErr = a.resolveDefaultKey(r)
	return a.ckey, a.ckeyErr
}

// keyProbeNamespace is the SSH namespace of the probe signature a key
// service makes before a command records anything; no record is signed in it.
const keyProbeNamespace = "groundzero.key-probe/v1"

func (a *app) resolveDefaultKey(r *repo.Repo) (*checkpointKey, error) {
	spec, err := sign.Resolve("", a.getenv, func(k string) string { return r.GitConfig(a.ctx, k) })
	if err != nil {
		return nil, nil // no key configured: unsigned
	}
	reg := a.currentRegistry(r)
	if reg == nil || len(reg.Signers) == 0 {
		return nil, nil
	}
	fpr, err := sign.Fingerprint(a.ctx, spec)
	if err != nil {
		return nil, usage(fmt.Errorf("checkpoint key %s: %w", spec, err), "set GROUNDZERO_KEY (or git's user.signingkey) to a key you hold, or unset it")
	}
	who := reg.FindByFingerprint(fpr)
	if err := a.mayCheckpoint(r, who); err != nil {
		return nil, usage(fmt.Errorf("checkpoint key %s (%s): %w", spec, fpr, err),
			"set GROUNDZERO_KEY (or git's user.signingkey) to your own registered key, or unset it to record without a checkpoint")
	}
	s, err := sign.New(spec, func() time.Time { return a.now })
	if err != nil {
		return nil, usage(err, "check the KEYSPEC and that the key exists")
	}
	// A key service can hand out the public key and still refuse to sign
	// (a policy without kms:Sign, a key swapped behind an alias). Found
	// only at the checkpoint, that would come after the command's entries
	// are written and its intent consumed; so the key signs a probe first,
	// in a namespace no record uses, checked against the registered key.
	if spec.Remote() {
		if _, err := s.Sign(a.ctx, []byte("groundzero checkpoint key probe\n"), keyProbeNamespace); err != nil {
			return nil, usage(fmt.Errorf("checkpoint key %s (%s) cannot sign: %w", spec, who.ID, err),
				"let this identity sign with the key (AWS kms:Sign, Cloud KMS roles/cloudkms.signerVerifier, Vault update on transit/sign/NAME); nothing was recorded or consumed")
		}
	}
	return &checkpointKey{spec: spec, signer: s, owner: who.ID}, nil
}

// mayCheckpoint says whether the signer may sign checkpoints.
func (a *app) mayCheckpoint(r *repo.Repo, who *signers.Signer) error {
	if who == nil {
		return errors.New("not a key of any signer in the registry, so it may not sign checkpoints")
	}
	if who.Status(a.now) != "active" {
		return fmt.Errorf("signer %q is %s", who.ID, who.Status(a.now))
	}
	if pol := a.evidencePolicy(r); pol != nil && len(pol.Gates.Checkpoint.Roles) > 0 && !who.HasAnyRole(pol.Gates.Checkpoint.Roles) {
		return fmt.Errorf("signer %q has roles [%s], but gates.checkpoint.roles allows only %s", who.ID, strings.Join(who.Roles, ", "), strings.Join(pol.Gates.Checkpoint.Roles, ", "))
	}
	return nil
}

// currentRegistry is the repository's current signers registry, or nil.
func (a *app) currentRegistry(r *repo.Repo) *signers.Registry {
	chain, err := signers.Load(r)
	if err != nil {
		return nil
	}
	return chain.Current()
}

// evidencePolicy returns policy.yaml for the evidence store settings, or nil
// when it cannot be read (the defaults apply).
func (a *app) evidencePolicy(r *repo.Repo) *policy.Policy {
	if r == nil {
		return nil
	}
	p, err := govern.LoadPolicy(r)
	if err != nil {
		return nil
	}
	return p
}

// openStore opens the evidence store: override when given, else policy.yaml's.
// A store is opened (and, for object storage, probed) once per command. When
// CI settings pin the store (GROUNDZERO_EVIDENCE_STORE), policy.yaml must name
// the same one: an older signed policy cannot move the anchor elsewhere.
func (a *app) openStore(r *repo.Repo, override string) (trail.Store, error) {
	url, days := policy.DefaultEvidenceStore, policy.DefaultRetentionDays
	if pol := a.evidencePolicy(r); pol != nil {
		url, days = pol.Evidence.Store, pol.Evidence.RetentionDays
	}
	if pin := a.getenv("GROUNDZERO_EVIDENCE_STORE"); pin != "" && override == "" && pin != url {
		return nil, failed(fmt.Errorf("%s names evidence store %s, but GROUNDZERO_EVIDENCE_STORE pins %s", repo.PolicyFile, redactURL(url), redactURL(pin)),
			"restore governance/policy.yaml from the newest reviewed commit, or change the pin in the CI settings after review")
	}
	readOnly := false
	if override != "" {
		url = override
	} else if r != nil && a.recordsLocally(r) {
		readOnly = true // the store is only read: read-only credentials do
	}
	base := ""
	if r != nil {
		base = r.Root
	}
	key := base + "\n" + url
	if s := a.stores[key]; s != nil {
		return s, nil
	}
	s, err := trail.Open(a.ctx, url, trail.Options{Base: base, RetentionDays: days, ReadOnly: readOnly})
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

// observing commands change nothing but record what they found;
// policy.yaml's evidence.read_only may have them record locally, so that
// they need only read access to the evidence store.
var observing = map[string]bool{
	"check": true, "manifest verify": true, "tag verify": true,
	"intent verify": true, "intent list": true, "policy check": true,
}

// recordsLocally reports whether this command records in the local
// read-only store instead of the evidence store.
func (a *app) recordsLocally(r *repo.Repo) bool {
	if !observing[a.command] {
		return false
	}
	pol := a.evidencePolicy(r)
	return pol != nil && pol.Evidence.RecordsLocally(a.command)
}

// redactURL drops credentials from a store URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// flush writes the events and a checkpoint. cmdErr is the command's own
// result: a failure to record never hides it.
func (rec *recorder) flush(cmdErr error) error {
	if len(rec.events) == 0 {
		return cmdErr
	}
	err := rec.write()
	if err == nil {
		return cmdErr
	}
	err = recordError(err)
	if cmdErr != nil {
		PrintError(rec.a.stderr, err)
		return cmdErr
	}
	return err
}

// recordError gives a failure to record its exit code and hint.
func recordError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var te *trail.TamperError
	if errors.As(err, &te) {
		return failed(fmt.Errorf("audit: %w", err), "the evidence store was rewritten; `groundzero audit verify` shows where, and nothing may rely on it until it is investigated")
	}
	var de *trail.DamagedError
	if errors.As(err, &de) {
		return failed(fmt.Errorf("audit: %w", err), "nothing is signed over a damaged trail; `groundzero audit verify` shows the damage, and the WORM copy what it was")
	}
	var torn *trail.TornError
	if errors.As(err, &torn) {
		return usage(fmt.Errorf("audit: %w", err), "an append was interrupted; run `groundzero audit repair` to move the torn bytes aside (they are kept)")
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
	if a.recordsLocally(rec.r) {
		return rec.writeLocal(store)
	}
	signer, actor, err := rec.checkpointSigner()
	if err != nil {
		return err
	}
	rec.breakGlass(store)
	if err := rec.commit(store, signer, actor); err != nil {
		return err
	}
	switch {
	case !a.authoritative(store, a.evidencePolicy(rec.r)):
		a.info("audit: recorded in %s, a local store: demo-grade only", store.URL())
	case signer == nil:
		a.info("audit: %d entr%s recorded in %s without a checkpoint: no registered key signs for this command (set GROUNDZERO_KEY)", len(rec.events), plural(len(rec.events), "y", "ies"), store.URL())
	}
	return nil
}

// writeLocal records a read-only command's events in the local store that
// policy.yaml names, without a checkpoint, and says where they went.
func (rec *recorder) writeLocal(read trail.Store) error {
	a := rec.a
	pol := a.evidencePolicy(rec.r)
	local, err := trail.Open(a.ctx, pol.Evidence.ReadOnly.Local, trail.Options{Base: rec.r.Root})
	if err != nil {
		return usage(err, "check evidence.read_only.local in governance/policy.yaml (file://DIR)")
	}
	actor := a.unverifiedActor()
	if k, err := a.defaultKey(rec.r); err == nil && k != nil {
		actor = k.owner
	}
	if rec.actor != "" {
		actor = rec.actor
	}
	for i := range rec.events {
		if rec.events[i].Actor == "" {
			rec.events[i].Actor = actor
		}
	}
	entries, err := trail.Append(a.ctx, local, a.now, rec.events...)
	if err != nil {
		return err
	}
	rec.appended = entries
	a.info("audit: %s recorded in %s (evidence.read_only.record: local); %s was only read", a.command, local.URL(), redactURL(read.URL()))
	return nil
}

// checkpointSigner picks who signs the checkpoint: the command's own key
// when its owner may sign checkpoints, else the default key; and the actor:
// the one the command verified, else the owner of that key, or an
// unverified name when nobody signs.
func (rec *recorder) checkpointSigner() (sign.Signer, string, error) {
	signer, actor, err := rec.keySigner()
	if rec.actor != "" {
		actor = rec.actor
	}
	return signer, actor, err
}

func (rec *recorder) keySigner() (sign.Signer, string, error) {
	a := rec.a
	if rec.signer != nil && rec.sig != nil {
		if reg := a.currentRegistry(rec.r); reg != nil {
			if who, _ := reg.FindKey(rec.sig); who != nil && a.mayCheckpoint(rec.r, who) == nil {
				return rec.signer, who.ID, nil
			}
		}
	}
	k, err := a.defaultKey(rec.r)
	if err != nil {
		return nil, "", err
	}
	if k != nil {
		return k.signer, k.owner, nil
	}
	return nil, a.unverifiedActor(), nil
}

// commit appends the events as actor, then signs and stores a checkpoint
// when there is a signer.
func (rec *recorder) commit(store trail.Store, signer sign.Signer, actor string) error {
	a := rec.a
	for i := range rec.events {
		if rec.events[i].Actor == "" {
			rec.events[i].Actor = actor
		}
	}
	// The checkpoint extends the state the anchor was read at, reading
	// only the entries since; a command that did not read it reads it now.
	var ix *anchor.Index
	if signer != nil {
		ix = a.anchors[store]
		if ix == nil && rec.r != nil {
			ix, _ = a.anchor(rec.r)
		}
	}
	if ix == nil {
		ix = a.anchors[store]
	}
	// A trail the anchor found damaged is not added to: entries after a
	// cut or a changed entry would fork it, and a checkpoint would vouch
	// for the damage.
	if ix != nil && ix.Clock != nil {
		return ix.Clock
	}
	if ix != nil && ix.Report != nil && !ix.Report.OK() {
		return &trail.DamagedError{Store: store.URL(), Report: ix.Report}
	}
	delete(a.anchors, store) // what was read back is stale now
	before := trail.Conflicts()
	entries, err := trail.Append(a.ctx, store, a.now, rec.events...)
	if err != nil {
		return err
	}
	rec.appended = entries
	if err := markConsumed(a, store, entries); err != nil {
		return err
	}
	if lost := trail.Conflicts() - before; lost > 0 {
		a.info("audit: %d conditional append(s) to %s lost to other writers and retried (contention)", lost, redactURL(store.URL()))
	}
	if signer == nil {
		return nil
	}
	cp, st, err := anchor.MakeCheckpoint(a.ctx, store, a.now, ix)
	if err != nil {
		return err
	}
	sig, err := signer.Sign(a.ctx, cp.Marshal(), audit.CheckpointNamespace)
	if err != nil {
		return fmt.Errorf("signing the checkpoint: %w", err)
	}
	return anchor.StoreSigned(a.ctx, store, cp, st, []*signature.Signature{sig})
}

// markConsumed writes, for each intent consumed, its marker: once, with
// the conditional write that appends entries, so that of two runners that
// consume one intent at once only one goes on, and a replay is refused from
// the marker whatever a checkpoint's state says.
func markConsumed(a *app, store trail.Store, entries []*audit.Entry) error {
	for _, e := range entries {
		if e.Action != anchor.Consumed {
			continue
		}
		nonce, _ := e.Details["nonce"].(string)
		name, ok := anchor.MarkerName(nonce)
		if !ok {
			continue
		}
		line, err := e.Marshal()
		if err != nil {
			return err
		}
		err = store.PutArtifact(a.ctx, name, append(line, '\n'))
		var exists *trail.ArtifactExistsError
		if errors.As(err, &exists) {
			return failed(fmt.Errorf("intent nonce %s was consumed by another run at the same time (%s exists in %s)", nonce, name, redactURL(store.URL())),
				"each intent authorises one action; create a new intent and have it approved again")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
