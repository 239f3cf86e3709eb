package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/anchor"
	"github.com/groundzero/groundzero/internal/breakglass"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/trail"
)

// maxTimeline bounds the entries an incident report lists.
const maxTimeline = 10000

func (a *app) breakglassCloseCmd() *cobra.Command {
	var incident, rotatedFile, keySpec, trustRoot string
	c := &cobra.Command{
		Use:   "close [--incident FILE] [--rotated FILE] [--key KEYSPEC]",
		Short: "close the break-glass window: rotation evidence, revocations and the incident report",
		Long: `close ends the newest break-glass window that has no recorded end (open, or
lapsed at its expiry). It reads the rotation evidence (--rotated, YAML):

  keys:          # emergency keys used under the window, rotated
    - {name: emergency-admin, old_fingerprint: FPR, new_fingerprint: FPR}
  credentials:   # credentials rotated, and where the new ones are kept
    - {name: ci-deploy, stored_in: "vault:secret/ci/deploy"}
  access:        # temporary access granted under the window
    - {name: alice-admin-session}

and writes, signed by the closer (the owner of --key):
  - a revocation (groundzero.revocation/v1) for each rotated key and each
    temporary access, in governance/breakglass/revocations/ID.json; a second
    person signs each with ` + "`groundzero breakglass sign FILE --key KEYSPEC`" + `
    (` + "`breakglass status`" + ` lists those short of two signatures);
  - the incident report skeleton at --incident (default
    governance/incidents/WINDOW.md): the timeline of the audit trail from
    the opening to the close (seq, time, actor, action, subject) with its
    evidence references (entry seq, artifact names, checkpoint size and
    root hash);
  - the close record (groundzero.break-glass-close/v1),
    governance/breakglass/WINDOW.close.json.
The close record, its signature, the incident report and the revocations
are kept in the evidence store as artifacts, then BREAK_GLASS_CLOSED is
recorded; the files are written to the repository only after that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.repo()
			if err != nil {
				return err
			}
			s, closer, err := a.registeredSigner(r, keySpec, "the closer signs with their own registered key (--key)")
			if err != nil {
				return err
			}
			var rot *breakglass.Rotated
			if rotatedFile != "" {
				data, err := readBounded(rotatedFile, breakglass.MaxSize)
				if err != nil {
					return usage(err, "")
				}
				if rot, err = breakglass.ParseRotated(rotatedFile, data); err != nil {
					return failed(err, "fix the rotation evidence file as the error says")
				}
			}
			env, err := a.anchoredGates(r, trustRoot)
			if err != nil {
				return err
			}
			ix := env.Anchor
			unclosed := ix.Unclosed()
			if len(unclosed) == 0 {
				return failed(&breakglass.NoWindowError{Last: ix.LatestWindow()}, "there is nothing to close")
			}
			w := unclosed[len(unclosed)-1]
			if err := a.checkRepoMarker(r, &w); err != nil {
				return err
			}
			_, werr := breakglass.Check(w, govern.WindowFacts(ix, env.Registry(), env.Policy, a.now))
			state := "open"
			var lp *breakglass.LapsedError
			switch {
			case werr == nil:
			case errors.As(werr, &lp), w.End == anchor.BreakGlassLapsed:
				state = "lapsed"
			default:
				state = "unverified"
				a.info("warning: %v; closing it records that", werr)
			}
			store, err := a.openStore(r, "")
			if err != nil {
				return err
			}
			timeline, err := a.timeline(store, w.Seq)
			if err != nil {
				return recordError(err)
			}
			incidentRel := breakglass.IncidentPath(w.ID)
			if incident != "" {
				if incidentRel, err = absRel(r, incident); err != nil {
					return usage(fmt.Errorf("--incident %s: %w", incident, err), "the incident report is kept in the repository, under governance/incidents/")
				}
			}
			// Revocations of the emergency keys and temporary access used.
			var revs []*breakglass.Revocation
			if rot != nil {
				for _, k := range rot.Keys {
					rv, err := breakglass.NewRevocation(w.ID, breakglass.SubjectKey, k.Name, k.OldFingerprint, "emergency key used under break-glass window "+w.ID+", rotated to "+k.NewFingerprint, closer, a.now)
					if err != nil {
						return usage(err, "")
					}
					revs = append(revs, rv)
				}
				for _, x := range rot.Access {
					rv, err := breakglass.NewRevocation(w.ID, breakglass.SubjectAccess, x.Name, "", "temporary access granted under break-glass window "+w.ID, closer, a.now)
					if err != nil {
						return usage(err, "")
					}
					revs = append(revs, rv)
				}
			}
			type signed struct {
				rel  string
				data []byte
				sig  *signature.Signature
			}
			var revFiles []signed
			var revIDs []string
			for _, rv := range revs {
				data, err := rv.Marshal()
				if err != nil {
					return usage(err, "")
				}
				sig, err := s.Sign(a.ctx, data, breakglass.RevocationKind)
				if err != nil {
					return usage(err, "check that the key is available")
				}
				revFiles = append(revFiles, signed{path.Join(breakglass.RevocationsDir, rv.ID+".json"), data, sig})
				revIDs = append(revIDs, rv.ID)
			}
			report := incidentReport(w, state, ix, timeline, rot, revs, closer, a.now.UTC().Format("2006-01-02T15:04:05Z"), redactURL(store.URL()))
			cl := &breakglass.Close{Closed: a.now.UTC().Format("2006-01-02T15:04:05Z"), Closer: closer, ID: w.ID, Incident: incidentRel,
				IncidentSHA256: sha256hex(report), Kind: breakglass.CloseKind, Lapsed: state == "lapsed", MarkerSHA256: w.Marker,
				Revocations: revIDs, Rotated: rot.Rotations()}
			clData, err := cl.Marshal()
			if err != nil {
				return usage(err, "")
			}
			clSig, err := s.Sign(a.ctx, clData, breakglass.CloseKind)
			if err != nil {
				return usage(err, "check that the key is available")
			}
			// Evidence first, then the entry, then the repository.
			put := []struct {
				name string
				data []byte
			}{{breakglass.CloseArtifact(w.ID), clData}, {breakglass.IncidentArtifact(w.ID), report}}
			if files, err := trail.SignatureFiles([]*signature.Signature{clSig}); err == nil {
				for ext, b := range files {
					put = append(put, struct {
						name string
						data []byte
					}{breakglass.CloseArtifact(w.ID) + ext, b})
				}
			}
			for _, f := range revFiles {
				put = append(put, struct {
					name string
					data []byte
				}{breakglass.RevocationArtifact(path.Base(strings.TrimSuffix(f.rel, ".json"))), f.data})
			}
			var artifacts []string
			for _, p := range put {
				if err := store.PutArtifact(a.ctx, p.name, p.data); err != nil {
					return failed(fmt.Errorf("keeping %s in the evidence store: %w", p.name, err), "the window is not closed; the evidence store must be reachable and writable")
				}
				artifacts = append(artifacts, p.name)
			}
			rec := a.recorder(r)
			rec.as(s, clSig)
			for i, rv := range revs {
				rec.add(breakglass.RevocationAction, rv.ID, map[string]any{"id": rv.ID, "window": w.ID, "subject": rv.Subject, "name": rv.Name,
					"fingerprint": rv.Fingerprint, "sha256": sha256hex(revFiles[i].data), "file": revFiles[i].rel, "signed_by": closer})
			}
			rotated := []any{}
			for _, x := range rot.Rotations() {
				rotated = append(rotated, map[string]any{"kind": x.Kind, "name": x.Name, "new_fingerprint": x.NewFingerprint, "stored_in": x.StoredIn})
			}
			rec.add(anchor.BreakGlassClosed, w.ID, map[string]any{"id": w.ID, "env": w.Env, "state": state, "closer": closer,
				"close_sha256": sha256hex(clData), "marker_sha256": w.Marker, "incident": incidentRel, "incident_sha256": cl.IncidentSHA256,
				"revocations": revIDs, "rotated": rotated, "artifacts": artifacts, "opened_seq": w.Seq})
			if err := rec.flush(nil); err != nil {
				return err
			}
			if err := r.WriteFile(incidentRel, report); err != nil {
				return usage(err, "restore it from the evidence store artifact "+breakglass.IncidentArtifact(w.ID))
			}
			if err := writeSigned(r, breakglass.ClosePath(w.ID), clData, clSig); err != nil {
				return usage(err, "")
			}
			for _, f := range revFiles {
				if err := writeSigned(r, f.rel, f.data, f.sig); err != nil {
					return usage(err, "")
				}
			}
			fmt.Fprintln(a.stdout, incidentRel)
			fmt.Fprintln(a.stdout, breakglass.ClosePath(w.ID))
			for _, f := range revFiles {
				fmt.Fprintln(a.stdout, f.rel)
			}
			a.info("break-glass window %s closed (%s); complete the incident report %s, and have a second person sign each revocation: `groundzero breakglass sign FILE --key KEYSPEC`", w.ID, state, incidentRel)
			return nil
		},
	}
	c.Flags().StringVar(&incident, "incident", "", "where to write the incident report skeleton (default governance/incidents/WINDOW.md)")
	c.Flags().StringVar(&rotatedFile, "rotated", "", "YAML file: the emergency keys and credentials rotated, with the new key fingerprints, and the temporary access to revoke")
	keyFlag(c, &keySpec)
	trustRootFlag(c, &trustRoot)
	return c
}

func writeSigned(r *repo.Repo, rel string, data []byte, sig *signature.Signature) error {
	if err := r.WriteFile(rel, data); err != nil {
		return err
	}
	_, err := sigfile.Add(r, rel, sig)
	return err
}

func readBounded(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return data, nil
}

// timeline reads the trail's entries from seq from on.
func (a *app) timeline(store trail.Store, from int64) ([]*audit.Entry, error) {
	rc, err := store.EntriesFrom(a.ctx, from)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []*audit.Entry
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), audit.MaxEntrySize+1)
	for sc.Scan() && len(out) < maxTimeline {
		e, err := audit.ParseEntry(sc.Bytes())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// incidentReport is the incident report skeleton: what the trail says
// happened between the opening and the close, and where the evidence is.
func incidentReport(w anchor.Window, state string, ix *anchor.Index, entries []*audit.Entry, rot *breakglass.Rotated, revs []*breakglass.Revocation, closer, closed, store string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Incident report: break-glass window %s\n\n", w.ID)
	fmt.Fprintf(&b, "- Environment: %s\n- Opened: audit entry %d (BREAK_GLASS_ACTIVE), marker sha256:%s\n- Expires: %s\n- Closed: %s by %s (window %s at close)\n- Evidence store: %s\n\n",
		w.Env, w.Seq, w.Marker, w.Expires, closed, closer, state, store)
	b.WriteString("## Summary\n\n_What happened, the impact, and why break-glass was needed._\n\n")
	b.WriteString("## Timeline (from the audit trail)\n\n| seq | time | actor | action | subject |\n|---|---|---|---|---|\n")
	var refs []string
	for _, e := range entries {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", e.Seq, e.Time, mdCell(e.Actor), mdCell(e.Action), mdCell(e.Subject))
		refs = append(refs, entryArtifacts(e)...)
	}
	if len(entries) == maxTimeline {
		fmt.Fprintf(&b, "\n_The timeline stops after %d entries; `groundzero audit show` lists the rest._\n", maxTimeline)
	}
	b.WriteString("\n## Evidence\n\n")
	if len(entries) > 0 {
		fmt.Fprintf(&b, "- Audit entries %d to %d\n", entries[0].Seq, entries[len(entries)-1].Seq)
	}
	if ix != nil && ix.Report != nil && ix.Report.Latest != nil {
		cp := ix.Report.Latest
		fmt.Fprintf(&b, "- Newest trusted checkpoint: size %d, root %s, time %s\n", cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]), cp.Time.UTC().Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(&b, "- Marker: %s (artifact %s)\n- Intent: artifact %s\n- Close record: %s (artifact %s)\n",
		breakglass.MarkerPath(w.ID), breakglass.MarkerArtifact(w.ID), breakglass.IntentArtifact(w.ID), breakglass.ClosePath(w.ID), breakglass.CloseArtifact(w.ID))
	slices.Sort(refs)
	for _, r := range slices.Compact(refs) {
		fmt.Fprintf(&b, "- Artifact %s\n", r)
	}
	b.WriteString("\n## Rotation\n\n")
	if rot == nil || len(rot.Rotations()) == 0 {
		b.WriteString("_None recorded._\n")
	}
	for _, x := range rot.Rotations() {
		switch x.Kind {
		case "key":
			fmt.Fprintf(&b, "- key %s: %s -> %s\n", x.Name, x.OldFingerprint, x.NewFingerprint)
		case "credential":
			fmt.Fprintf(&b, "- credential %s: rotated, kept in %s\n", x.Name, x.StoredIn)
		case "access":
			fmt.Fprintf(&b, "- temporary access %s: revoked\n", x.Name)
		}
	}
	b.WriteString("\n## Revocations (two signatures each)\n\n")
	if len(revs) == 0 {
		b.WriteString("_None._\n")
	}
	for _, rv := range revs {
		fmt.Fprintf(&b, "- %s/%s.json: %s %s\n", breakglass.RevocationsDir, rv.ID, rv.Subject, rv.Name)
	}
	b.WriteString("\n## Root cause\n\n_To be written._\n\n## Follow-up actions\n\n_To be written._\n")
	return b.Bytes()
}

// entryArtifacts names the evidence artifacts an entry refers to.
func entryArtifacts(e *audit.Entry) []string {
	var out []string
	add := func(v any) {
		switch x := v.(type) {
		case string:
			if x != "" && !strings.ContainsAny(x, "/ \n|") {
				out = append(out, x)
			}
		case []any:
			for _, y := range x {
				if s, ok := y.(string); ok && s != "" && !strings.ContainsAny(s, "/ \n|") {
					out = append(out, s)
				}
			}
		}
	}
	for _, k := range []string{"artifacts", "log", "evidence"} {
		add(e.Details[k])
	}
	sort.Strings(out)
	return out
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
