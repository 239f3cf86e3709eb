package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "verify, show, prove, export, ship and repair the audit trail",
	}
	c.AddCommand(a.auditVerifyCmd(), a.auditShowCmd(), a.auditProveCmd(), a.auditCheckProofCmd(),
		a.auditExportCmd(), a.auditShipCmd(), a.auditRepairCmd(), a.auditCheckpointCmd())
	return c
}

// trustedRegistry loads the signers registry and requires its chain to
// verify: checkpoint signatures are judged against it.
func (a *app) trustedRegistry(r *repo.Repo, trustRoot string) (*signers.Registry, *policy.Policy, error) {
	env, err := a.gates(r, a.trustRoot(trustRoot), false)
	if err != nil {
		return nil, nil, err
	}
	if res := env.SignersGate(); !res.OK {
		if env.ChainErr != nil && env.Chain == nil {
			return nil, nil, registryError(env.ChainErr)
		}
		return nil, nil, failed(errors.New(res.Detail), "the signers registry must verify before its keys can vouch for checkpoints; "+res.Hint)
	}
	return env.Registry(), env.Policy, nil
}

func readCheckpointFile(path string) (*audit.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usage(err, "give the path of a checkpoint file (checkpoints/N-XXXXXXXX.cp in the evidence store)")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, usage(err, "")
	}
	cp, err := audit.ParseCheckpoint(data)
	if err != nil {
		return nil, usage(fmt.Errorf("%s: %w", path, err), "")
	}
	return cp, nil
}

type verifyJSON struct {
	OK                 bool          `json:"ok"`
	Store              string        `json:"store"`
	Origin             string        `json:"origin"`
	Entries            int64         `json:"entries"`
	CheckpointsValid   int           `json:"checkpoints_valid"`
	CheckpointsInvalid int           `json:"checkpoints_invalid"`
	CheckpointsIgnored int           `json:"checkpoints_ignored"`
	Ignored            []ignoredJSON `json:"ignored_checkpoints"`
	Anchored           bool          `json:"anchored"`
	BrandNew           bool          `json:"brand_new,omitempty"`
	Uncovered          int64         `json:"entries_after_newest_checkpoint"`
	LatestCheckpoint   int64         `json:"latest_checkpoint_size"`
	FirstBad           *int64        `json:"first_bad_seq,omitempty"`
	Problem            string        `json:"problem,omitempty"`
	TamperedKey        string        `json:"tampered_key,omitempty"`
	TornTailBytes      int64         `json:"torn_tail_bytes,omitempty"`
}

type ignoredJSON struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// brandNew reports a repository in which nobody has signed anything yet: the
// signers registry is version 1 with no signature, and the manifest has
// none. It is the one state in which a trail may legitimately have no
// trusted checkpoint, or no entries at all.
func brandNew(r *repo.Repo) bool {
	chain, err := signers.Load(r)
	if err != nil || len(chain.Versions) != 1 || chain.Current().Version != 1 || chain.CurrentSigned() {
		return false
	}
	for _, p := range append(sigfile.Paths(repo.SignersFile), sigfile.Paths(repo.ManifestFile)...) {
		if _, err := os.Lstat(r.Abs(p)); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// checkpointSigners names who may sign checkpoints, for hints.
func checkpointSigners(pol *policy.Policy) string {
	if pol == nil || len(pol.Gates.Checkpoint.Roles) == 0 {
		return "a registry signer"
	}
	return "a registry signer with role " + strings.Join(pol.Gates.Checkpoint.Roles, " or ")
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var storeURL, trusted, format, trustRoot string
	c := &cobra.Command{
		Use:   "verify [--store URL] [--trusted-checkpoint FILE]",
		Short: "check the trail's chain, tree, checkpoint signatures and consistency",
		Long: `verify reads every entry once: it checks the hash chain, seq numbers and
that no entry is dated before the one it follows, recomputes the Merkle tree,
checks each checkpoint's root and signature (by a current signer whose role
policy.yaml allows, any role by default) and the consistency proof between
successive checkpoints. With --trusted-checkpoint it also proves that the
trail extends a checkpoint you kept, which catches a rewritten history or a
truncated tail. It reports, like aws cloudtrail validate-logs, how many
entries and checkpoints are valid and the first bad seq.

A checkpoint that no current registry signer vouches for (an unknown key, a
bad or missing signature, a revoked or expired signer, a malformed file) is
listed as ignored and plays no other part. A trail is trusted only when a
valid checkpoint vouches for it: entries without one, or no entries at all,
fail, except in a brand-new repository where nothing has been signed yet.
In object storage with versions, an object overwritten or deleted after it
was written fails verification and is named.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			// Before anything is signed there is no registry to trust yet.
			fresh := a.trustRoot(trustRoot) == "" && brandNew(r)
			var reg *signers.Registry
			var pol *policy.Policy
			if fresh {
				pol = a.evidencePolicy(r)
			} else if reg, pol, err = a.trustedRegistry(r, trustRoot); err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			cfg := trail.VerifyConfig{Registry: reg, Now: a.now}
			if pol != nil {
				cfg.Roles = pol.Gates.Checkpoint.Roles
				if pol.Gates.Checkpoint.MaxAge != "" {
					cfg.MaxAge, _ = policy.ParseDuration(pol.Gates.Checkpoint.MaxAge)
				}
			}
			if trusted != "" {
				if cfg.Trusted, err = readCheckpointFile(trusted); err != nil {
					return err
				}
			}
			rep, err := trail.Verify(a.ctx, store, cfg)
			var te *trail.TamperError
			if errors.As(err, &te) {
				return a.tampered(format, store, te)
			}
			if err != nil {
				return usage(err, "the evidence store must be readable")
			}
			// The verdict: the trail verifies, and a trusted checkpoint
			// vouches for it (or nothing has been signed yet).
			var verdict *Error
			switch {
			case !rep.OK():
				hint := "the trail was changed after it was written; compare with the exported WORM copy (`groundzero audit verify --store s3://...`)"
				if rep.TornTail > 0 && strings.HasPrefix(rep.Problem, "torn tail") {
					hint = "an append was interrupted; `groundzero audit repair` moves the torn bytes aside"
				}
				verdict = failed(fmt.Errorf("audit trail invalid at seq %d", rep.FirstBad), hint)
			case fresh:
			case rep.Entries == 0:
				verdict = failed(errors.New("the evidence store holds no entries, but the repository has signed governance: the trail was emptied, or this is the wrong store"),
					"check evidence.store in governance/policy.yaml (or --store); if the trail was emptied, restore it from the exported WORM copy (`groundzero audit export --store COPY --to STORE`)")
			case rep.Unanchored():
				verdict = failed(fmt.Errorf("no trusted checkpoint covers the trail: %d entries, none vouched for by a registry signer", rep.Entries),
					"compare the trail with the exported WORM copy (`groundzero audit verify --store s3://...`); if they agree, "+checkpointSigners(pol)+" who may sign checkpoints runs `groundzero audit checkpoint --key KEYSPEC`")
			}
			out := verifyJSON{OK: verdict == nil, Store: store.URL(), Origin: rep.Origin, Entries: rep.Entries,
				CheckpointsValid: rep.CheckpointsValid, CheckpointsInvalid: rep.CheckpointsInvalid, CheckpointsIgnored: len(rep.Ignored),
				Ignored: []ignoredJSON{}, Anchored: rep.Latest != nil, BrandNew: fresh,
				Uncovered: rep.Uncovered, Problem: rep.Problem, TornTailBytes: rep.TornTail}
			for _, ig := range rep.Ignored {
				out.Ignored = append(out.Ignored, ignoredJSON{Name: ig.Name, Reason: ig.Reason})
			}
			if rep.Latest != nil {
				out.LatestCheckpoint = rep.Latest.Size
			}
			if !rep.OK() {
				out.FirstBad = &rep.FirstBad
			} else if verdict != nil {
				out.Problem = verdict.Err.Error()
			}
			if format == "json" {
				a.printJSON(out)
				if verdict != nil {
					return verdict
				}
				return nil
			}
			fmt.Fprintf(a.stdout, "Trail %s in %s\n", orNone(rep.Origin), store.URL())
			fmt.Fprintf(a.stdout, "%d entries checked (hash chain and Merkle tree)\n", rep.Entries)
			fmt.Fprintf(a.stdout, "%d/%d checkpoints valid", rep.CheckpointsValid, rep.CheckpointsValid+rep.CheckpointsInvalid)
			if len(rep.Ignored) > 0 {
				fmt.Fprintf(a.stdout, ", %d ignored (not vouched for by a current registry signer)", len(rep.Ignored))
			}
			fmt.Fprintln(a.stdout)
			for _, ig := range rep.Ignored {
				fmt.Fprintf(a.stdout, "ignored %s: %s\n", ig.Name, ig.Reason)
			}
			if rep.Latest != nil {
				fmt.Fprintf(a.stdout, "newest valid checkpoint: size %d, %s, signed by %s\n", rep.Latest.Size, rep.Latest.Time.Format(time.RFC3339), strings.Join(rep.Latest.Signers, ", "))
			}
			if rep.Uncovered > 0 && rep.Latest != nil {
				fmt.Fprintf(a.stdout, "%d entries after the newest valid checkpoint are not yet covered by a signature\n", rep.Uncovered)
			}
			if cfg.Trusted != nil && rep.OK() {
				fmt.Fprintf(a.stdout, "the trail extends the trusted checkpoint of size %d\n", cfg.Trusted.Size)
			}
			switch {
			case !rep.OK():
				fmt.Fprintf(a.stdout, "INVALID at seq %d: %s\n", rep.FirstBad, rep.Problem)
			case fresh:
				fmt.Fprintln(a.stdout, "unanchored: brand-new repository, no signed command yet")
			case rep.Entries == 0:
				fmt.Fprintln(a.stdout, "EMPTY: no entries, but the repository has signed governance")
			case rep.Unanchored():
				fmt.Fprintf(a.stdout, "UNANCHORED: %d entries, no trusted checkpoint\n", rep.Entries)
			default:
				fmt.Fprintf(a.stdout, "OK: %d entries, %d checkpoints\n", rep.Entries, rep.CheckpointsValid)
			}
			if verdict != nil {
				return verdict
			}
			return nil
		},
	}
	storeFlag(c, &storeURL)
	c.Flags().StringVar(&trusted, "trusted-checkpoint", "", "a checkpoint `FILE` kept from earlier; the trail must extend it")
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}

// tampered reports an object store whose trail objects were overwritten or
// deleted (T34).
func (a *app) tampered(format string, store trail.Store, te *trail.TamperError) error {
	if format == "json" {
		a.printJSON(verifyJSON{Store: store.URL(), Ignored: []ignoredJSON{}, Problem: te.Error(), TamperedKey: te.Key})
	} else {
		fmt.Fprintf(a.stdout, "Trail in %s\n", store.URL())
		fmt.Fprintf(a.stdout, "INVALID: %s %s\n", te.Key, te.Reason)
	}
	return failed(te, "someone with write access to the bucket changed the trail: keep the bucket as evidence, find the writer in its access logs, and verify the original versions (or an exported copy with `groundzero audit verify --store URL`)")
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

func (a *app) auditShowCmd() *cobra.Command {
	var storeURL, since, action, format string
	c := &cobra.Command{
		Use:   "show [--since TIME|DURATION] [--action ACTION]",
		Short: "list audit entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			var from time.Time
			if since != "" {
				if t, err := time.Parse(time.RFC3339, since); err == nil {
					from = t
				} else if d, err := policy.ParseDuration(since); err == nil {
					from = a.now.Add(-d)
				} else {
					return usage(fmt.Errorf("--since %q is neither an RFC 3339 time nor a duration such as 24h", since), "")
				}
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			var entries []*audit.Entry
			err = trail.Scan(a.ctx, store, nil, func(line []byte) error {
				e, err := audit.ParseEntry(line)
				if err != nil {
					return fmt.Errorf("an entry is malformed (%v); run `groundzero audit verify`", err)
				}
				t, _ := time.Parse(time.RFC3339, e.Time)
				if (action == "" || e.Action == action || strings.HasPrefix(e.Action, action+".")) && !t.Before(from) {
					entries = append(entries, e)
				}
				return nil
			})
			var torn *trail.TornError
			if errors.As(err, &torn) {
				a.info("%v; showing the complete entries (`groundzero audit repair` moves the torn bytes aside)", err)
			} else if err != nil {
				return failed(err, "")
			}
			if format == "json" {
				if entries == nil {
					entries = []*audit.Entry{}
				}
				return a.printJSON(entries)
			}
			for _, e := range entries {
				d, _ := json.Marshal(e.Details)
				fmt.Fprintf(a.stdout, "%6d  %s  %-16s %-16s %-24s %s\n", e.Seq, e.Time, e.Actor, e.Action, e.Subject, d)
			}
			return nil
		},
	}
	storeFlag(c, &storeURL)
	c.Flags().StringVar(&since, "since", "", "only entries at or after this RFC 3339 time, or this long ago (24h, 7d)")
	c.Flags().StringVar(&action, "action", "", "only entries with this action (or its sub-actions: gate, signers, manifest...)")
	formatFlagVar(c, &format, "text", "json")
	return c
}

// proofDoc is an offline-checkable inclusion proof.
type proofDoc struct {
	Format      string            `json:"format"`
	Seq         int64             `json:"seq"`
	Entry       string            `json:"entry"`
	Checkpoint  string            `json:"checkpoint"`
	Signatures  map[string]string `json:"checkpoint_signatures"`
	Proof       []string          `json:"proof"`
	Description string            `json:"description"`
}

const proofFormat = "groundzero.inclusion-proof/v1"

func (a *app) auditProveCmd() *cobra.Command {
	var storeURL, trustRoot string
	var seq int64
	c := &cobra.Command{
		Use:   "prove --seq N",
		Short: "print an inclusion proof of entry N against the newest checkpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, _, err := a.trustedRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			rep, err := trail.Verify(a.ctx, store, trail.VerifyConfig{Registry: reg, Now: a.now, Proofs: true})
			if err != nil {
				return usage(err, "")
			}
			if !rep.OK() {
				return failed(fmt.Errorf("the trail does not verify: %s", rep.Problem), "run `groundzero audit verify`")
			}
			if rep.Latest == nil || seq < 0 || seq >= rep.Latest.Size {
				return failed(fmt.Errorf("entry %d is not covered by a signed checkpoint (newest covers %d entries)", seq, sizeOf(rep)),
					"sign a checkpoint first: `groundzero audit checkpoint --key KEYSPEC`")
			}
			proof, err := audit.Prove(rep.Hashes, seq, rep.Latest.Size)
			if err != nil {
				return failed(err, "")
			}
			var line []byte
			trail.Scan(a.ctx, store, []byte(fmt.Sprintf(`,"seq":%d,`, seq)), func(l []byte) error {
				if e, err := audit.ParseEntry(l); err == nil && e.Seq == seq {
					line = append([]byte(nil), l...)
				}
				return nil
			})
			cps, err := store.Checkpoints(a.ctx)
			if err != nil {
				return usage(err, "")
			}
			doc := proofDoc{Format: proofFormat, Seq: seq, Entry: string(line), Checkpoint: string(rep.Latest.Marshal()), Signatures: map[string]string{},
				Description: "RFC 6962 inclusion proof of the entry in the tree of the signed checkpoint; check with `groundzero audit check-proof FILE`"}
			for _, sc := range cps {
				if sc.Name == rep.Latest.Name {
					for ext, data := range sc.Sigs {
						doc.Signatures[ext] = string(data)
					}
				}
			}
			for _, h := range proof {
				doc.Proof = append(doc.Proof, base64.StdEncoding.EncodeToString(h[:]))
			}
			return a.printJSON(doc)
		},
	}
	c.Flags().Int64Var(&seq, "seq", -1, "the entry to prove")
	storeFlag(c, &storeURL)
	trustRootFlag(c, &trustRoot)
	return c
}

func sizeOf(rep *audit.Report) int64 {
	if rep.Latest == nil {
		return 0
	}
	return rep.Latest.Size
}

func (a *app) auditCheckProofCmd() *cobra.Command {
	var trustRoot string
	c := &cobra.Command{
		Use:   "check-proof FILE",
		Short: "verify an inclusion proof offline (and its checkpoint's signatures, inside a repository)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usage(err, "")
			}
			data, err := io.ReadAll(io.LimitReader(f, 1<<20))
			f.Close()
			if err != nil {
				return usage(err, "")
			}
			var doc proofDoc
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil || doc.Format != proofFormat {
				return usage(fmt.Errorf("%s is not a %s document", args[0], proofFormat), "produce one with `groundzero audit prove --seq N`")
			}
			cp, err := audit.ParseCheckpoint([]byte(doc.Checkpoint))
			if err != nil {
				return failed(err, "")
			}
			var proof tlog.RecordProof
			for _, p := range doc.Proof {
				b, err := base64.StdEncoding.DecodeString(p)
				if err != nil || len(b) != tlog.HashSize {
					return failed(errors.New("proof hash is malformed"), "")
				}
				var h tlog.Hash
				copy(h[:], b)
				proof = append(proof, h)
			}
			e, err := audit.ParseEntry([]byte(doc.Entry))
			if err != nil || e.Seq != doc.Seq {
				return failed(errors.New("the entry in the proof is malformed or has another seq"), "")
			}
			if err := audit.CheckInclusion([]byte(doc.Entry), doc.Seq, cp, proof); err != nil {
				return failed(fmt.Errorf("entry %d is not in the tree of the checkpoint: %v", doc.Seq, err), "")
			}
			fmt.Fprintf(a.stdout, "entry %d (%s %s) is included in %s at size %d\n", doc.Seq, e.Action, e.Subject, cp.Origin, cp.Size)
			r, err := a.repo()
			if err != nil {
				a.info("checkpoint signatures not checked: not inside a governed repository (no signers registry)")
				return nil
			}
			reg, _, err := a.trustedRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			var sigs []*signature.Signature
			for ext, d := range doc.Signatures {
				scheme, ok := signature.SchemeOfFile(ext)
				if !ok {
					return failed(fmt.Errorf("unknown signature kind %q", ext), "")
				}
				parsed, err := signature.Parse(scheme, []byte(d))
				if err != nil {
					return failed(err, "")
				}
				sigs = append(sigs, parsed...)
			}
			ids, err := signers.Count(reg.Check([]byte(doc.Checkpoint), sigs, audit.CheckpointNamespace, a.now, signers.Current),
				signers.Requirement{What: "the checkpoint", Threshold: 1})
			if err != nil {
				return failed(err, "")
			}
			fmt.Fprintf(a.stdout, "checkpoint signed by %s\n", strings.Join(ids, ", "))
			return nil
		},
	}
	trustRootFlag(c, &trustRoot)
	return c
}

// waives returns policy.yaml's waiver of an evidence store capability, or
// nil: a waiver is governance, reviewed and signed with the policy, never a
// flag.
func waives(pol *policy.Policy, capability string) *policy.Waiver {
	if pol == nil {
		return nil
	}
	return pol.Evidence.Waives(capability)
}

func (a *app) auditExportCmd() *cobra.Command {
	var storeURL, to string
	c := &cobra.Command{
		Use:   "export --to URL",
		Short: "copy the trail and its artifacts to WORM object storage; idempotent",
		Long: `export copies the entries the target lacks, every checkpoint with its
signatures, and the artifacts (apply logs) the target lacks. What the target
holds already must be byte-identical. The target must keep its objects under
Object Lock, unless governance/policy.yaml waives it (evidence.waive:
[{capability: object_lock, reason: ...}]). The export is recorded in the trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usage(errors.New("--to is required"), "for example --to s3://evidence-bucket/trail")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			src, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			dst, err := a.openStore(r, to)
			if err != nil {
				return err
			}
			waiver := waives(a.evidencePolicy(r), policy.CapObjectLock)
			res, err := trail.Export(a.ctx, src, dst, trail.ExportOptions{AllowNoObjectLock: waiver != nil})
			rec := a.recorder(r)
			details := map[string]any{"ok": err == nil, "from": redactURL(src.URL()), "entries": res.Entries, "checkpoints": res.Checkpoints,
				"artifacts": res.Artifacts, "object_lock": res.ObjectLock}
			if waiver != nil && !res.ObjectLock {
				details["object_lock_waived"] = waiver.Reason
			}
			if err != nil {
				details["error"] = err.Error()
			}
			rec.add("audit.export", redactURL(dst.URL()), details)
			if err != nil {
				return rec.flush(exportError(err))
			}
			fmt.Fprintf(a.stdout, "exported %d entries and %d checkpoints from %s to %s\n", res.Entries, res.Checkpoints, src.URL(), dst.URL())
			fmt.Fprintf(a.stdout, "exported %d artifact%s\n", res.Artifacts, plural(res.Artifacts, "", "s"))
			if !res.ObjectLock {
				fmt.Fprintf(a.stdout, "%s has no Object Lock: waived in %s (%s)\n", dst.URL(), repo.PolicyFile, waiver.Reason)
			}
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&storeURL, "store", "", "source store URL (default: evidence.store in policy.yaml)")
	c.Flags().StringVar(&to, "to", "", "destination store URL (s3://BUCKET/PREFIX with Object Lock, or file://DIR where policy waives it)")
	return c
}

// exportError gives an export failure its exit code and hint.
func exportError(err error) error {
	var div *trail.DivergedError
	var nol *trail.NoObjectLockError
	var te *trail.TamperError
	switch {
	case errors.As(err, &div):
		return failed(err, "the two trails have different histories; verify both with `groundzero audit verify --store`")
	case errors.As(err, &nol):
		return failed(err, "export to a bucket created with Object Lock; or, if review accepts evidence that can be rewritten, waive it in governance/policy.yaml: evidence: {waive: [{capability: object_lock, reason: ...}]}")
	case errors.As(err, &te):
		return failed(err, "someone with write access to the bucket changed the trail: verify it with `groundzero audit verify --store URL`")
	}
	return usage(err, "")
}

func (a *app) auditRepairCmd() *cobra.Command {
	var storeURL string
	c := &cobra.Command{
		Use:   "repair",
		Short: "move a torn tail aside so appends can continue (local stores)",
		Long: `repair is for a local trail whose last line was cut off by a crash. It moves
the incomplete bytes into DIR/torn/ (they are kept, never discarded) and
truncates the segment to its last complete entry. Nothing else is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			d, ok := store.(*trail.Dir)
			if !ok {
				return usage(fmt.Errorf("%s is an object store; entries there are written whole and never torn", store.URL()), "")
			}
			n, aside, err := d.Repair(a.now)
			if err != nil {
				return usage(err, "")
			}
			if n == 0 {
				fmt.Fprintln(a.stdout, "no torn tail; nothing to repair")
				return nil
			}
			fmt.Fprintf(a.stdout, "moved %d torn bytes to %s\n", n, aside)
			rec := a.recorder(r)
			rec.add("audit.repair", store.URL(), map[string]any{"bytes": n, "kept_at": aside})
			return rec.flush(nil)
		},
	}
	storeFlag(c, &storeURL)
	return c
}

func (a *app) auditCheckpointCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "checkpoint [--key KEYSPEC]",
		Short: "sign a checkpoint over the whole trail now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			s, spec, err := a.signer(r, keySpec)
			if err != nil {
				return err
			}
			// Only a registry signer who may sign checkpoints vouches for
			// the trail (T35): refuse any other key before writing.
			owner, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			var who *signers.Signer
			if reg := a.currentRegistry(r); reg != nil && owner != "" {
				who = reg.Lookup(owner)
			}
			if err := a.mayCheckpoint(r, who); err != nil {
				return failed(fmt.Errorf("%s cannot sign checkpoints: %w", spec, err),
					"use the key of a registry signer who may sign checkpoints (gates.checkpoint.roles in governance/policy.yaml)")
			}
			// This key, not the default one, signs this command's checkpoint.
			a.ckey, a.ckeyErr = &checkpointKey{spec: spec, signer: s, owner: owner}, nil
			rec := a.recorder(r)
			rec.add("audit.checkpoint", "", nil)
			if err := rec.flush(nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "checkpoint signed by %s\n", owner)
			return nil
		},
	}
	keyFlag(c, &keySpec)
	return c
}
