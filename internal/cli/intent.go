package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/record"
)

func (a *app) intentCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "intent",
		Short: "create, sign, approve and verify signed intents",
	}
	c.AddCommand(a.intentNewCmd(), a.intentSignCmd(), a.intentApproveCmd(), a.intentVerifyCmd(), a.intentListCmd())
	return c
}

func sha256File(p string) (string, error) {
	sum, err := manifest.HashFile(p)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

// readIntent reads an intent file given on the command line.
func readIntent(r *repo.Repo, file string) (*intent.Intent, []byte, string, error) {
	rel := file
	if abs, err := absRel(r, file); err == nil {
		rel = abs
	}
	data, err := r.ReadFile(rel, record.MaxSize)
	if err != nil {
		return nil, nil, rel, usage(err, "give the path of an intent in governance/intents/")
	}
	in, err := intent.Parse(data)
	var ve *intent.VersionError
	if errors.As(err, &ve) {
		return nil, nil, rel, failed(fmt.Errorf("%s: %w", rel, err), "create a new intent with `groundzero intent new` and have it approved again")
	}
	if err != nil {
		return nil, nil, rel, failed(fmt.Errorf("%s: %w", rel, err), "intents are written by `groundzero intent new` and never edited by hand")
	}
	if want := path.Join(repo.IntentsDir, in.ID+".json"); rel != want {
		return nil, nil, rel, failed(fmt.Errorf("%s holds intent %s, which belongs at %s", rel, in.ID, want), "")
	}
	return in, data, rel, nil
}

// absRel turns a path given by the user into a repository-relative one.
func absRel(r *repo.Repo, p string) (string, error) {
	abs, err := filepathAbs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepathRel(r.Root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s is outside the repository", p)
	}
	return rel, nil
}

func (a *app) signIntent(r *repo.Repo, rel string, data []byte, keySpec string, in *intent.Intent, action string, extra map[string]any) error {
	s, _, err := a.signer(r, keySpec)
	if err != nil {
		return err
	}
	sig, err := s.Sign(a.ctx, data, intent.Kind)
	if err != nil {
		return usage(err, "check that the key is available to gpg, ssh-keygen or the file given")
	}
	p, err := sigfile.Add(r, rel, sig)
	if err != nil {
		return usage(err, "")
	}
	fmt.Fprintln(a.stdout, p)
	rec := a.recorder(r)
	rec.as(s, sig)
	if reg := a.currentRegistry(r); reg != nil {
		if who, _ := reg.FindKey(sig); who != nil && who.ID == in.Requester {
			a.info("note: you requested intent %s; whether your own signature counts depends on gates.approvals.%s.requester_counts", in.ID, in.Action)
		}
	}
	details := map[string]any{"key": sig.Issuer(), "record_sha256": sha256hex(data)}
	for k, v := range extra {
		details[k] = v
	}
	rec.add(action, in.ID, details)
	return rec.flush(nil)
}

type intentStatus struct {
	ID        string   `json:"id"`
	File      string   `json:"file"`
	Env       string   `json:"env"`
	Action    string   `json:"action"`
	Requester string   `json:"requester"`
	Expires   string   `json:"expires"`
	Plan      string   `json:"plan_sha256,omitempty"`
	Valid     bool     `json:"valid"`
	Approvers []string `json:"approvers,omitempty"`
	Problem   string   `json:"problem,omitempty"`
}

// judgeIntent verifies an intent for its own environment and action against
// the repository and the freshness anchor as they are now.
// The gate environment (registry chain, anchor) is loaded once per command,
// however many intents `intent list` judges.
func (a *app) judgeIntent(r *repo.Repo, in *intent.Intent, data []byte, rel, planSHA string) (*intent.Verified, error) {
	if a.intentEnv == nil {
		genv, err := a.gates(r, "", false)
		if err != nil {
			return nil, err
		}
		a.intentEnv = genv
	}
	genv := a.intentEnv
	pol := genv.Policy
	if pol == nil {
		_, err := a.loadPolicy(r) // says what is wrong with it
		return nil, err
	}
	if planSHA == "" {
		planSHA = in.PlanSHA256
	}
	v, err := govern.VerifyIntent(a.ctx, genv, pol, govern.IntentFile{Intent: in, Data: data, Rel: rel}, in.Env, planSHA)
	var ue *govern.UsageError
	var ge *govern.GateError
	if errors.As(err, &ue) || errors.As(err, &ge) {
		return nil, govErr(err)
	}
	return v, err
}
