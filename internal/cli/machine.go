package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/machine"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sigfile"
	"github.com/groundzero/groundzero/internal/signers"
)

// Machine certification lifetimes.
const (
	defaultMachineValidity = "90d"
	maxMachineValidity     = 366 * 24 * time.Hour
)

func (a *app) machineCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "machine",
		Short: "certify the admin machines the interactive path may run on",
		Long: `Each admin machine holds a machine key (ed25519, in
$XDG_CONFIG_HOME/groundzero/machine, default ~/.config/groundzero/machine,
never in the repository). A security signer certifies it with a signed record
in governance/machines/<fingerprint>.json. When policy.yaml sets
gates.certified_machine: true, interactive apply and bootstrap run only on a
certified machine, and the machine key signs a statement of each run into the
audit trail (machine.statement).`,
	}
	c.AddCommand(a.machineCertifyCmd(), a.machineKeyCmd(), a.machineListCmd(), a.machineVerifyCmd())
	return c
}

func (a *app) machineKeyDir() (string, error) {
	dir, err := machine.KeyDir(a.getenv)
	if err != nil {
		return "", usage(err, "set HOME (or XDG_CONFIG_HOME) to the administrator's home directory")
	}
	return dir, nil
}

// machineRegistry is the signers registry, verified from the pin as the
// gates verify it.
func (a *app) machineRegistry(r *repo.Repo, trustRoot string) (*signers.Registry, error) {
	genv, err := a.gates(r, trustRoot, false)
	if err != nil {
		return nil, err
	}
	if res := genv.SignersGate(); !res.OK {
		return nil, failed(errors.New(res.Detail), res.Hint)
	}
	return genv.Registry(), nil
}

func (a *app) machineCertifyCmd() *cobra.Command {
	var owner, expires, key, trustRoot string
	c := &cobra.Command{
		Use:   "certify --owner ID [--expires DURATION] [--key KEYSPEC]",
		Short: "certify this host as an admin machine, signed by a security signer",
		Long: `certify creates this host's machine key when it has none, and writes the
certification record governance/machines/<fingerprint>.json (kind
groundzero.machine/v1): the key's fingerprint and public key, the hostname,
the owner (a current signer), when it was made and when it expires. It is
signed with --key, which must belong to a current signer with role security.
Certifying again replaces the record and its signatures.

The record is a governed file: run ` + "`groundzero manifest update`" + ` and have the
manifest signed before the machine gate can rely on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if owner == "" {
				return usage(errors.New("--owner is required"), "name the signer who administers this host: --owner ID")
			}
			validity, err := policy.ParseDuration(expires)
			if err != nil || validity <= 0 || validity > maxMachineValidity {
				return usage(fmt.Errorf("--expires %q is not a duration between 1s and 366d", expires), "for example --expires 90d")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, err := a.machineRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			switch s := reg.Lookup(owner); {
			case s == nil:
				return failed(fmt.Errorf("owner %q is not a signer in %s", owner, repo.SignersFile), "the owner must be a signer: `groundzero signers add`")
			case s.Status(a.now) != "active":
				return failed(fmt.Errorf("owner %q is %s", owner, s.Status(a.now)), "the owner must be a current signer")
			}
			signer, spec, err := a.signer(r, key)
			if err != nil {
				return err
			}
			who, err := a.keyOwner(r, spec)
			if err != nil {
				return err
			}
			if s := reg.Lookup(who); s == nil || !s.HasRole(machine.CertifierRole) || s.Status(a.now) != "active" {
				return failed(fmt.Errorf("key %s is not the key of a current signer with role %s", spec, machine.CertifierRole),
					"a security signer certifies machines: pass --key with their KEYSPEC")
			}
			dir, err := a.machineKeyDir()
			if err != nil {
				return err
			}
			host, err := os.Hostname()
			if err != nil {
				return usage(fmt.Errorf("cannot read the hostname: %w", err), "")
			}
			k, created, err := machine.CreateKey(dir, "groundzero-machine@"+host)
			if err != nil {
				return usage(err, "the machine key must be an ed25519 OpenSSH key readable only by its owner (mode 0600)")
			}
			if created {
				a.info("created the machine key %s", dir+string(os.PathSeparator)+machine.PrivateKeyFile)
			}
			rec, err := machine.New(k.Public(), owner, host, a.now, validity)
			if err != nil {
				return usage(err, "")
			}
			data, err := rec.Marshal()
			if err != nil {
				return usage(err, "")
			}
			sig, err := signer.Sign(a.ctx, data, machine.Kind)
			if err != nil {
				return usage(err, "check the KEYSPEC and that the key exists")
			}
			file := machine.Path(rec.Fingerprint)
			if err := sigfile.Remove(r, file); err != nil {
				return usage(err, "")
			}
			if err := r.WriteFile(file, data); err != nil {
				return usage(err, "")
			}
			sigPath, err := sigfile.Add(r, file, sig)
			if err != nil {
				return usage(err, "")
			}
			rc := a.recorder(r)
			rc.as(signer, sig)
			rc.add("machine.certify", rec.Fingerprint, map[string]any{
				"fingerprint": rec.Fingerprint, "hostname": rec.Hostname, "owner": rec.Owner,
				"expires": rec.Expires, "record": file, "record_sha256": sha256hex(data), "certifier": who,
			})
			if err := rc.flush(nil); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, file)
			a.info("signed %s; run `groundzero manifest update` and have the manifest signed to put it in force", sigPath)
			return nil
		},
	}
	c.Flags().StringVar(&owner, "owner", "", "the signer `ID` who administers this host")
	c.Flags().StringVar(&expires, "expires", defaultMachineValidity, "how long the certification is valid (e.g. 90d, 720h; at most 366d)")
	keyFlag(c, &key)
	trustRootFlag(c, &trustRoot)
	return c
}

func (a *app) machineKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "key",
		Short: "print this host's machine key fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.machineKeyDir()
			if err != nil {
				return err
			}
			k, err := machine.LoadKey(dir)
			if err != nil {
				return failed(err, machine.Hint(err))
			}
			fmt.Fprintln(a.stdout, k.Fingerprint)
			return nil
		},
	}
}

type machineStatus struct {
	File        string   `json:"file"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	Owner       string   `json:"owner,omitempty"`
	Expires     string   `json:"expires,omitempty"`
	Certifiers  []string `json:"certifiers,omitempty"`
	ThisHost    bool     `json:"this_host"`
	Valid       bool     `json:"valid"`
	Problem     string   `json:"problem,omitempty"`
}

func (a *app) machineListCmd() *cobra.Command {
	var format, trustRoot string
	c := &cobra.Command{
		Use:   "list",
		Short: "list the certified machines and whether each record verifies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, err := a.machineRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			entries, err := machine.List(r, reg, a.now)
			if err != nil {
				return usage(err, "")
			}
			local := ""
			if dir, err := machine.KeyDir(a.getenv); err == nil {
				if k, err := machine.LoadKey(dir); err == nil {
					local = k.Fingerprint
				}
			}
			out := []machineStatus{}
			for _, e := range entries {
				st := machineStatus{File: e.File, Valid: e.Err == nil}
				if e.Record != nil {
					st.Fingerprint, st.Hostname, st.Owner, st.Expires = e.Record.Fingerprint, e.Record.Hostname, e.Record.Owner, e.Record.Expires
					st.ThisHost = local != "" && e.Record.Fingerprint == local && e.File == machine.Path(local)
				}
				if e.Certified != nil {
					st.Certifiers = e.Certified.Certifiers
				}
				if e.Err != nil {
					st.Problem = e.Err.Error()
				}
				out = append(out, st)
			}
			if format == "json" {
				return a.printJSON(out)
			}
			for _, st := range out {
				mark := " "
				if st.ThisHost {
					mark = "*"
				}
				status := "valid"
				if !st.Valid {
					status = "INVALID: " + st.Problem
				}
				fp := st.Fingerprint
				if fp == "" {
					fp = st.File
				}
				fmt.Fprintf(a.stdout, "%s %s  %-20s %-12s %s  %s\n", mark, fp, st.Hostname, st.Owner, st.Expires, status)
			}
			if len(out) == 0 {
				a.info("no machine is certified (%s is empty)", machine.Dir)
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	trustRootFlag(c, &trustRoot)
	return c
}

func (a *app) machineVerifyCmd() *cobra.Command {
	var format, trustRoot string
	c := &cobra.Command{
		Use:   "verify",
		Short: "check that this host is a certified admin machine, as the machine gate does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			reg, err := a.machineRegistry(r, trustRoot)
			if err != nil {
				return err
			}
			dir, err := a.machineKeyDir()
			if err != nil {
				return err
			}
			k, err := machine.LoadKey(dir)
			st := machineStatus{ThisHost: true}
			var c *machine.Certified
			if err == nil {
				st.Fingerprint, st.File = k.Fingerprint, machine.Path(k.Fingerprint)
				c, err = machine.Check(r, k, reg, a.now)
			}
			if err == nil {
				st.Valid, st.Hostname, st.Owner, st.Expires, st.Certifiers = true, c.Record.Hostname, c.Record.Owner, c.Record.Expires, c.Certifiers
			} else {
				st.Problem = err.Error()
			}
			if format == "json" {
				a.printJSON(st)
			} else if err == nil {
				fmt.Fprintf(a.stdout, "CERTIFIED  %s: host %s, owner %s, certified by %s, expires %s\n", st.Fingerprint, st.Hostname, st.Owner, strings.Join(st.Certifiers, ", "), st.Expires)
			} else {
				fmt.Fprintf(a.stdout, "NOT CERTIFIED  %v\n", err)
			}
			if err != nil {
				return failed(err, machine.Hint(err))
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	trustRootFlag(c, &trustRoot)
	return c
}
