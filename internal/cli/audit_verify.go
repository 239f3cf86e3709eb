package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
	"github.com/groundzero/groundzero/internal/trail"
)

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
			pol := a.evidencePolicy(r)
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			cfg := trail.VerifyConfig{Now: a.now}
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
			var rep *audit.Report
			anchorStore, _ := a.openStore(r, "")
			switch {
			case fresh:
				rep, err = trail.Verify(a.ctx, store, cfg)
			case store == anchorStore:
				// The trail being verified is the anchor: one pass judges
				// its checkpoints with the registry in the repository and
				// gives the witness times the registry chain is then
				// verified with; if the chain verifies, those judgements
				// stand.
				if chain, err := signers.Load(r); err == nil {
					cfg.Registry = chain.Current()
				}
				ix, rerr := anchor.ReadFull(a.ctx, store, cfg, a.authoritative(store, pol))
				if rerr == nil {
					env := gate.Load(r, a.now, a.trustRoot(trustRoot), false, ix, nil)
					if err := trustedChain(env); err != nil {
						return err
					}
					rep = ix.Report
				}
				err = rerr
			default:
				if cfg.Registry, _, err = a.trustedRegistry(r, trustRoot); err != nil {
					return err
				}
				rep, err = trail.Verify(a.ctx, store, cfg)
			}
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
