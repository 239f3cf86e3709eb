package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/lock"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/trail"
	"github.com/groundzero/groundzero/record"
)

// maxEvidence bounds one piece of step evidence.
const maxEvidence = 64 << 20

func (a *app) breakglassSignCmd() *cobra.Command {
	var keySpec, trustRoot string
	c := &cobra.Command{
		Use:   "sign FILE [--key KEYSPEC]",
		Short: "sign a break-glass revocation as its second person",
		Long: `sign adds the caller's signature to a break-glass revocation
(governance/breakglass/revocations/ID.json, groundzero.revocation/v1) and
says whether two distinct people have now signed it, as policy.yaml's revoke
approval rule and the two-person rule require. The signature is recorded in
the audit trail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			rel, err := absRel(r, args[0])
			if err != nil {
				return usage(fmt.Errorf("%s: %w", args[0], err), "give the path of a revocation in "+breakglass.RevocationsDir+"/")
			}
			data, err := r.ReadFile(rel, breakglass.MaxSize+1)
			if err != nil {
				return usage(err, "give the path of a revocation in "+breakglass.RevocationsDir+"/")
			}
			rv, err := breakglass.ParseRevocation(rel, data)
			if err != nil {
				return failed(err, "break-glass revocations are written by `groundzero breakglass close` and never edited")
			}
			env, err := a.gates(r, a.trustRoot(trustRoot), false)
			if err != nil {
				return err
			}
			if err := trustedChain(env); err != nil {
				return err
			}
			s, owner, err := a.registeredSigner(r, keySpec, "sign with your own registered key (--key)")
			if err != nil {
				return err
			}
			sig, err := s.Sign(a.ctx, data, breakglass.RevocationKind)
			if err != nil {
				return usage(err, "check that the key is available")
			}
			if _, err := sigfile.Add(r, rel, sig); err != nil {
				return usage(err, "")
			}
			sigs, err := sigfile.Load(r, rel)
			if err != nil {
				return failed(err, "")
			}
			ids, aerr := lock.Approve("revocation "+rv.ID, data, sigs, env.Registry(), a.now, breakglass.RevocationKind, env.Policy.Gates.Approvals["revoke"])
			rec := a.recorder(r)
			rec.as(s, sig)
			rec.add(breakglass.SignAction, rel, map[string]any{"id": rv.ID, "window": rv.Window, "subject": rv.Subject, "name": rv.Name,
				"sha256": sha256hex(data), "signer": owner, "people": ids, "in_force": aerr == nil})
			if err := rec.flush(nil); err != nil {
				return err
			}
			if aerr != nil {
				fmt.Fprintf(a.stdout, "revocation %s signed by %s; not in force yet: %v\n", rv.ID, owner, aerr)
				return nil
			}
			fmt.Fprintf(a.stdout, "revocation %s of %s %s is signed by %s: in force\n", rv.ID, rv.Subject, rv.Name, strings.Join(ids, ", "))
			return nil
		},
	}
	keyFlag(c, &keySpec)
	trustRootFlag(c, &trustRoot)
	return c
}

func (a *app) breakglassCustodyCmd() *cobra.Command {
	var item, keySpec string
	c := &cobra.Command{
		Use:   "custody --item TEXT [--key KEYSPEC]",
		Short: "record who took custody of the offline repository or an emergency key",
		Long: `custody records, in the audit trail, that the owner of --key (default
GROUNDZERO_KEY) took custody of an item: the offline repository bundle, an
emergency key, a hardware token. It is step 1 of the break-glass procedure
and may be recorded before a window is open.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			item = strings.TrimSpace(item)
			if len(item) < 3 || len(item) > 500 {
				return usage(errors.New("--item is required: 3 to 500 characters naming what was retrieved"), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			rec := a.recorder(r)
			d := map[string]any{"item": item, "step": 1}
			if err := a.asHolder(rec, r, keySpec, item, d); err != nil {
				return err
			}
			rec.add(breakglass.CustodyAction, item, d)
			if err := rec.flush(nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "custody of %q recorded\n", item)
			return nil
		},
	}
	c.Flags().StringVar(&item, "item", "", "what was retrieved, e.g. \"offline repository bundle, safe 2\"")
	keyFlag(c, &keySpec)
	return c
}

// stepKind is the SSH namespace of the statement a custody or step entry's
// key signs, to bind the entry's actor to that key (T31).
var stepKind = record.Kind("break-glass-step")

// asHolder makes the owner of --key the actor of what rec records: the key
// signs the statement (the entry's subject and details), so the name is
// bound to a key the registry knows. Without --key, the default key acts,
// as for every command.
func (a *app) asHolder(rec *recorder, r *repo.Repo, keySpec, subject string, d map[string]any) error {
	if keySpec == "" {
		return nil
	}
	s, owner, err := a.registeredSigner(r, keySpec, "record with your own registered key (--key)")
	if err != nil {
		return err
	}
	stmt, err := record.Marshal(map[string]any{"kind": stepKind, "subject": subject, "details": d, "time": a.now.UTC().Format(time.RFC3339)})
	if err != nil {
		return usage(err, "")
	}
	sig, err := s.Sign(a.ctx, stmt, stepKind)
	if err != nil {
		return usage(err, "check that the key is available")
	}
	rec.as(s, sig)
	d["holder"] = owner
	return nil
}

func (a *app) breakglassStepCmd() *cobra.Command {
	var note, evidence, keySpec string
	c := &cobra.Command{
		Use:   "step N --note TEXT [--evidence FILE]",
		Short: "record a manual step of the break-glass procedure, with its evidence",
		Long: `step records that step N (1 to 8) of the break-glass procedure was carried
out by hand, with a note and, optionally, a file of evidence (a log, a
screenshot, an export). The evidence is kept in the evidence store once, as
the artifact evidence-SHA256, and the entry records its SHA-256. Step 6
(recreate the CI identities and store the rotated credentials in Vault) is
recorded this way. Evidence must hold no secret: name credentials and
where they are kept, never their values.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 8 {
				return usage(fmt.Errorf("step %q is not a step of the procedure (1 to 8)", args[0]), "")
			}
			note = strings.TrimSpace(note)
			if len(note) < 3 || len(note) > 2000 {
				return usage(errors.New("--note is required: 3 to 2000 characters saying what was done"), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			d := map[string]any{"step": n, "note": note}
			if evidence != "" {
				data, err := readBounded(evidence, maxEvidence)
				if err != nil {
					return usage(err, "")
				}
				store, err := a.openStore(r, "")
				if err != nil {
					return err
				}
				sum := sha256hex(data)
				name := breakglass.EvidenceArtifact(sum)
				var exists *trail.ArtifactExistsError
				if err := store.PutArtifact(a.ctx, name, data); err != nil && !errors.As(err, &exists) {
					return recordError(fmt.Errorf("keeping %s: %w", name, err))
				}
				d["evidence"], d["evidence_sha256"], d["evidence_file"], d["evidence_bytes"] = name, sum, filepath.Base(evidence), len(data)
			}
			rec := a.recorder(r)
			if err := a.asHolder(rec, r, keySpec, fmt.Sprintf("step %d", n), d); err != nil {
				return err
			}
			rec.add(breakglass.StepAction, fmt.Sprintf("step %d", n), d)
			if err := rec.flush(nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "step %d recorded", n)
			if ev, ok := d["evidence"].(string); ok {
				fmt.Fprintf(a.stdout, " with evidence %s", ev)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	c.Flags().StringVar(&note, "note", "", "what was done")
	c.Flags().StringVar(&evidence, "evidence", "", "a file of evidence, kept in the evidence store by its SHA-256")
	keyFlag(c, &keySpec)
	return c
}
