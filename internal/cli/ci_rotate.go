package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/cicred"
	"github.com/groundzero/groundzero/internal/gate"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

// CIRotateKind is the signature namespace of the statement a rotation's
// signer signs to prove they hold their key.
const CIRotateKind = "groundzero.ci-rotate/v1"

// ciRotateRoles are the roles whose members may rotate CI credentials.
var ciRotateRoles = []string{signers.RoleOperator, signers.RoleSecurity}

func (a *app) ciRotateCmd() *cobra.Command {
	var env, role, keySpec, trustRoot, format string
	var dryRun bool
	c := &cobra.Command{
		Use:   "rotate --env ENV [--role plan|apply] [--dry-run] [--key KEYSPEC]",
		Short: "rotate the environment's CI access keys (minio, spaces, oci) held in Vault/OpenBao",
		Long: `rotate replaces the access keys CI runners use for the state store where
the store has no OIDC federation for CI (backend kinds minio, spaces and
oci). Each environment has two: plan (reads PREFIX/ENV/*, writes only the
lock object) and apply (reads and writes PREFIX/ENV/*). For each, rotate

  1. reads the key in force from Vault/OpenBao KV v2 (backend.ci_credentials),
  2. creates a new key at the provider, scoped to the environment's prefix,
  3. verifies it against the S3 endpoint (a plan key must be refused a write),
  4. stores it in Vault (check-and-set on the version read) and reads it back,
  5. deletes the old key at the provider.

A failure in steps 2-4 deletes the new key and leaves the old one in force;
stderr says which step failed and what to do. The secret goes only to Vault.
Each rotation is recorded in the audit trail (action ci.rotate) with the key
ids, the Vault path and version and every request ID.

The gates that need no cloud run first. Rotation needs no intent: it grants
nothing the signed policy.yaml does not already grant. It must be run by a
registered signer with role operator or security, who proves it by signing
the request with their key (--key, GROUNDZERO_KEY or git's user.signingkey);
their key signs the audit checkpoint. --dry-run shows what would change and
changes nothing.

Credentials: VAULT_TOKEN (or BAO_TOKEN); for minio the admin identity in
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for spaces DIGITALOCEAN_TOKEN;
for oci the OCI config file (~/.oci/config).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			roles := cicred.Roles
			if role != "" {
				if !slices.Contains(cicred.Roles, role) {
					return usage(fmt.Errorf("--role %q is not plan or apply", role), "")
				}
				roles = []string{role}
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			run, err := a.governedRun(r, env, "", "", trustRoot, false)
			if err != nil {
				return err
			}
			defer run.Close()
			if err := run.NeedEnv(); err != nil {
				return govErr(err)
			}
			cr := &ciRotation{a: a, r: r, run: run, format: format, dry: dryRun}
			if ok, err := run.Static(a.ctx, false, run.EnvName); !ok || err != nil {
				return cr.finish(err)
			}
			cfg, err := a.ciRotateConfig(run, roles)
			if err != nil {
				return cr.finish(err)
			}
			if dryRun {
				cr.planned, err = cicred.Plan(a.ctx, cfg)
				return cr.finish(stepErr(err))
			}
			if !cr.proveSigner(keySpec, roles) {
				return cr.finish(nil)
			}
			cr.rotated, err = cicred.Rotate(a.ctx, cfg)
			return cr.finish(stepErr(err))
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&role, "role", "", "rotate only this role's key: plan or apply (default: both)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change, change nothing")
	keyFlag(c, &keySpec)
	trustRootFlag(c, &trustRoot)
	formatFlagVar(c, &format, "text", "json")
	return c
}

// ciRotation is one run of ci rotate: what it found and did, printed and
// recorded once at the end.
type ciRotation struct {
	a       *app
	r       *repo.Repo
	run     *govern.Run
	format  string
	dry     bool
	signer  sign.Signer
	sig     *signature.Signature
	who     string
	planned []cicred.Planned
	rotated []cicred.Rotated
}

func stepErr(err error) error {
	var se *cicred.StepError
	if errors.As(err, &se) {
		return failed(se, se.Hint)
	}
	return err
}

// ciRotateConfig builds the rotation from the governed policy.yaml.
func (a *app) ciRotateConfig(run *govern.Run, roles []string) (cicred.Config, error) {
	pol, env := run.Policy, run.EnvName
	cc := pol.Backend.CICredentials
	if cc == nil {
		return cicred.Config{}, usage(fmt.Errorf("%s: backend.ci_credentials is not set", repo.PolicyFile),
			"add backend.ci_credentials with the Vault address, the KV mount and a path per environment (see `groundzero policy schema`)")
	}
	path := cc.Path(env)
	if path == "" {
		return cicred.Config{}, usage(fmt.Errorf("%s: backend.ci_credentials.environments has no entry for %s", repo.PolicyFile, env),
			"add environments: {"+env+": {path: ci/"+env+"}} under backend.ci_credentials")
	}
	spec, _, err := backend.FromPolicy(pol, env)
	if err != nil {
		return cicred.Config{}, usage(fmt.Errorf("%s: %v", repo.PolicyFile, err), "complete the backend section")
	}
	scopes := map[string]cicred.Scope{}
	for _, role := range roles {
		if scopes[role], err = cicred.NewScope(spec, role); err != nil {
			return cicred.Config{}, usage(fmt.Errorf("%s: %v", repo.PolicyFile, err), "complete the backend section")
		}
	}
	token := a.getenv("VAULT_TOKEN")
	if token == "" {
		token = a.getenv("BAO_TOKEN")
	}
	kv, err := cicred.NewKV(cicred.KVOptions{Address: cc.Vault.Address, Mount: cc.KVMount(), Path: path, Namespace: cc.Vault.Namespace, Token: token})
	if err != nil {
		return cicred.Config{}, usage(err, "set VAULT_TOKEN (or BAO_TOKEN) to a token that may read and write "+cc.KVMount()+"/data/"+path+"/*")
	}
	cfg := cicred.Config{Env: env, Roles: roles, Scopes: scopes, Store: kv, Verifier: cicred.S3Verifier{}, Now: func() time.Time { return a.now }, VerifyAttempts: 1}
	switch spec.Kind {
	case backend.KindMinIO:
		cfg.Provider, err = cicred.NewMinIO(cicred.MinIOOptions{Endpoint: spec.Endpoint, Region: spec.Region,
			AccessKey: a.getenv("AWS_ACCESS_KEY_ID"), SecretKey: cicred.Secret(a.getenv("AWS_SECRET_ACCESS_KEY"))})
	case backend.KindSpaces:
		cfg.Provider, err = cicred.NewSpaces(cicred.SpacesOptions{Token: a.getenv("DIGITALOCEAN_TOKEN")})
		// New Spaces keys and customer secret keys take a moment to reach
		// every node.
		cfg.VerifyAttempts, cfg.VerifyWait = 6, 5*time.Second
	case backend.KindOCI:
		cfg.Provider, err = cicred.NewOCI(cicred.OCIOptions{ConfigProvider: common.DefaultConfigProvider(), Users: cc.OCIUsers})
		cfg.VerifyAttempts, cfg.VerifyWait = 6, 5*time.Second
	default:
		return cfg, usage(fmt.Errorf("backend kind %s has no rotated CI keys", spec.Kind), "CI reaches this backend through OIDC federation (ci: section)")
	}
	if err != nil {
		return cfg, usage(err, "give the provider's admin credentials in the environment (see `groundzero ci rotate --help`)")
	}
	return cfg, nil
}

// rotationStatement is what the signer signs: who asks to rotate what,
// when, under which governed state.
func (cr *ciRotation) statement(roles []string) []byte {
	sum, _ := govern.ManifestSum(cr.r)
	return []byte(fmt.Sprintf("%s\nenv %s\nroles %s\ntime %s\nmanifest %s\n", CIRotateKind, cr.run.EnvName, strings.Join(roles, ","), cr.a.now.Format(time.RFC3339), sum))
}

// proveSigner signs the rotation statement with the caller's key and
// checks that the key is a registered, active signer with a role that may
// rotate. Its result is the signer gate.
func (cr *ciRotation) proveSigner(keySpec string, roles []string) bool {
	a := cr.a
	res := gate.Result{Name: "signer"}
	defer func() { cr.run.Results = append(cr.run.Results, res) }()
	s, _, err := a.signer(cr.r, keySpec)
	if err != nil {
		res.Detail, res.Hint = "ci rotate needs the key of a registered signer: "+err.Error(), "pass --key KEYSPEC or set GROUNDZERO_KEY to your own registered key"
		return false
	}
	msg := cr.statement(roles)
	sig, err := s.Sign(a.ctx, msg, CIRotateKind)
	if err != nil {
		res.Detail, res.Hint = "signing the rotation request: "+err.Error(), "check that the key is available to gpg, ssh-keygen or the file given"
		return false
	}
	reg := cr.run.Gates.Registry()
	var who *signers.Signer
	var key *signature.PublicKey
	if reg != nil {
		who, key = reg.FindKey(sig)
	}
	switch {
	case who == nil:
		res.Detail, res.Hint = fmt.Sprintf("key %s is not a key of any signer in %s", sig.Issuer(), repo.SignersFile), "rotate with your own registered key (--key), or have it added with `groundzero signers add`"
	case key.Verify(msg, sig, CIRotateKind, a.now) != nil:
		res.Detail, res.Hint = fmt.Sprintf("the signature by %s over the rotation request does not verify", who.ID), "check the key"
	case who.Status(a.now) != "active":
		res.Detail, res.Hint = fmt.Sprintf("signer %s is %s", who.ID, who.Status(a.now)), "rotate as an active signer"
	case !who.HasAnyRole(ciRotateRoles):
		res.Detail, res.Hint = fmt.Sprintf("signer %s has roles [%s]; rotating CI keys needs %s", who.ID, strings.Join(who.Roles, ", "), strings.Join(ciRotateRoles, " or ")),
			"have an operator or security signer run it"
	default:
		res.OK, res.Detail = true, fmt.Sprintf("rotation requested by %s (%s), signature by %s verified", who.ID, strings.Join(who.Roles, ", "), sig.Issuer())
		cr.signer, cr.sig, cr.who = s, sig, who.ID
		sum := sha256.Sum256(msg)
		cr.run.Note("ci.rotate.request", cr.run.EnvName, map[string]any{"env": cr.run.EnvName, "roles": strings.Join(roles, ","), "signer": who.ID, "key": sig.Issuer(), "statement_sha256": hex.EncodeToString(sum[:])})
	}
	return res.OK
}

// finish prints the gates and what the rotation did, records it, and
// returns the command's result.
func (cr *ciRotation) finish(result error) error {
	a, run := cr.a, cr.run
	gateFormat := cr.format
	if gateFormat == "json" {
		gateFormat = formatNone
	}
	if err := a.report(gateFormat, run.Results); err != nil && result == nil {
		result = err
	}
	if cr.format == "json" {
		doc := map[string]any{"command": "ci rotate", "env": run.EnvName, "dry_run": cr.dry, "ok": result == nil, "gates": run.Results}
		if cr.dry {
			doc["planned"] = cr.planned
		} else {
			doc["rotated"] = cr.rotated
		}
		if result != nil {
			doc["error"] = result.Error()
		}
		if err := a.printJSON(doc); err != nil && result == nil {
			result = err
		}
	} else {
		cr.printText()
	}
	if run.Gates == nil {
		return govErr(result)
	}
	rec := a.runRecorder(cr.r, run)
	if cr.signer != nil {
		rec.as(cr.signer, cr.sig)
	}
	for _, ev := range run.Events() {
		rec.add(ev.Action, ev.Subject, ev.Details)
	}
	for _, r := range cr.rotated {
		rec.add("ci.rotate", r.Env+"/"+r.Role, rotatedDetails(r))
	}
	return rec.flush(govErr(result))
}

func (cr *ciRotation) printText() {
	w := cr.a.stdout
	for _, p := range cr.planned {
		fmt.Fprintf(w, "would rotate %s/%s (%s): %s\n", cr.run.EnvName, p.Role, p.Provider, p.Scope)
		fmt.Fprintf(w, "  grant: %s\n", p.Grant)
		cur := "no key yet"
		if p.CurrentKeyID != "" {
			cur = fmt.Sprintf("key %s, version %d", p.CurrentKeyID, p.CurrentVersion)
		}
		fmt.Fprintf(w, "  vault: %s (now %s)\n", p.VaultPath, cur)
		if p.Earlier != "" {
			fmt.Fprintf(w, "  then:  delete key %s if it still exists (the previous rotation's old key)\n", p.Earlier)
		}
		if p.CurrentKeyID != "" {
			fmt.Fprintf(w, "  then:  delete key %s once the new key is verified and stored\n", p.CurrentKeyID)
		}
	}
	for _, r := range cr.rotated {
		for _, warn := range r.Warnings {
			cr.a.info("warning: %s/%s: %s", r.Env, r.Role, warn)
		}
		if r.Step != "" {
			fmt.Fprintf(w, "FAILED %s/%s at step %s: old key %s %s\n", r.Env, r.Role, r.Step, orNone(r.OldKeyID), map[bool]string{true: "in force", false: "still exists"}[r.Step != cicred.StepDelete])
			continue
		}
		old := "no old key"
		if r.OldKeyID != "" {
			old = "old key " + r.OldKeyID + " " + r.OldKey
		}
		fmt.Fprintf(w, "rotated %s/%s: %s key %s, %s, %s version %d\n", r.Env, r.Role, r.Provider, r.NewKeyID, old, r.VaultPath, r.KVVersion)
	}
}

// rotatedDetails is the ci.rotate entry: ids, paths, versions and request
// IDs, never a secret.
func rotatedDetails(r cicred.Rotated) map[string]any {
	d := map[string]any{
		"env": r.Env, "role": r.Role, "provider": r.Provider, "scope": r.Scope,
		"new_key_id": r.NewKeyID, "old_key_id": r.OldKeyID, "old_key": r.OldKey,
		"vault_path": r.VaultPath, "kv_version": r.KVVersion,
		"request_ids": r.RequestIDs(), "calls": r.Calls, "ok": r.Step == "",
	}
	if r.Earlier != "" {
		d["earlier_key"] = r.Earlier
	}
	if r.Step != "" {
		d["failed_step"] = r.Step
	}
	if len(r.Warnings) > 0 {
		d["warnings"] = r.Warnings
	}
	return d
}
