package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/signers"
)

func parseRoles(s string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(signers.AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q; roles are %s", r, strings.Join(signers.AllRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

func parseTimeFlag(name, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "", fmt.Errorf("--%s %q is not an RFC 3339 time such as 2026-01-01T00:00:00Z", name, v)
	}
	return t.UTC().Format(time.RFC3339), nil
}

// keyFileName names the copy of a public key under governance/keys/.
func keyFileName(id string, k *signature.PublicKey) string {
	if k.Scheme == signature.SSH {
		sum := sha256.Sum256(k.SSHKey().Marshal())
		return "keys/" + id + "-" + hex.EncodeToString(sum[:8]) + ".pub"
	}
	return "keys/" + id + "-" + k.Fingerprint[len(k.Fingerprint)-16:] + ".asc"
}

// placeKeyFile copies a public key file into governance/keys/ and returns its
// registry-relative name. It never overwrites a file: the registry binds each
// key file by its SHA-256, and earlier registry versions may name the file.
// When keyFileName's file already holds these bytes it is reused; when it
// holds other bytes (an updated certificate of the same key, say) the new
// bytes go to a name carrying their own SHA-256. created reports whether a
// file was written.
func placeKeyFile(r *repo.Repo, id string, key *signature.PublicKey, data []byte) (rel string, created bool, err error) {
	base := keyFileName(id, key)
	ext := path.Ext(base)
	alt := strings.TrimSuffix(base, ext) + "-" + signers.FileHash(data)[:16] + ext
	for _, name := range []string{base, alt} {
		p := repo.GovernanceDir + "/" + name
		if !r.Exists(p) {
			if err := r.WriteFile(p, data); err != nil {
				return "", false, err
			}
			return name, true, nil
		}
		if have, err := r.ReadFile(p, signature.MaxFileSize); err == nil && bytes.Equal(have, data) {
			return name, false, nil
		}
	}
	return "", false, fmt.Errorf("%s/%s and %s/%s already hold other key files", repo.GovernanceDir, base, repo.GovernanceDir, alt)
}

// sameKey returns the signer, and the recorded key file, whose key holds any
// of key's material, in whatever format.
func sameKey(reg *signers.Registry, key *signature.PublicKey) (*signers.Signer, string) {
	mine := key.Material()
	for _, s := range reg.Signers {
		for i, pk := range s.PublicKeys() {
			for _, m := range pk.Material() {
				if slices.Contains(mine, m) && i < len(s.Keys) {
					return s, s.Keys[i].File
				}
			}
		}
	}
	return nil, ""
}

func (a *app) signersAddCmd() *cobra.Command {
	var id, roleList, keyPath, after, before, name string
	c := &cobra.Command{
		Use:   "add --id ID --role ROLE[,ROLE...] --key PUBLIC_KEY_FILE",
		Short: "add a signer, or another key for an existing signer",
		Long: `add copies the public key into governance/keys/ and records the signer,
the key's fingerprint and the SHA-256 of the key file. It accepts an armored
OpenPGP public key (gpg --armor --export) or one SSH public key line (ed25519,
ecdsa, rsa of at least 3072 bits, sk-ssh-ed25519, sk-ecdsa). Roles: release,
operator, approver, security, ci.

A key belongs to one person and is listed once, in one format: the same
ed25519 key as an OpenPGP certificate and as an SSH key is one key.

Given a changed file of a key the signer already has (an OpenPGP certificate
with a new expiry or subkey), add records the new file under a new name, so
earlier registry versions keep the file they name. An OpenPGP revocation
cannot be dropped this way.

While version 1 of the registry is unsigned it is edited in place. Once the
current version carries signatures, add writes version N+1, which needs the
signatures of version N's security signers (groundzero signers sign).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if id == "" || keyPath == "" {
				return usage(errors.New("--id and --key are required"), "")
			}
			roles, err := parseRoles(roleList)
			if err != nil {
				return usage(err, "")
			}
			va, err := parseTimeFlag("valid-after", after)
			if err != nil {
				return usage(err, "")
			}
			vb, err := parseTimeFlag("valid-before", before)
			if err != nil {
				return usage(err, "")
			}
			f, err := os.Open(keyPath)
			if err != nil {
				return usage(err, "give the path of the signer's public key file")
			}
			data, err := io.ReadAll(io.LimitReader(f, signature.MaxFileSize+1))
			f.Close()
			if err != nil {
				return usage(err, "")
			}
			key, err := signature.ParsePublicKey(data)
			if err != nil {
				return usage(fmt.Errorf("%s: %w", keyPath, err), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			rel, created, err := placeKeyFile(r, id, key, data)
			if err != nil {
				return usage(err, "move the stray key files out of governance/keys/")
			}
			ref := signers.KeyRef{File: rel, Fingerprint: key.Fingerprint, SHA256: signers.FileHash(data)}
			updated := false
			reg, err := signers.Edit(r, func(reg *signers.Registry) error {
				owner := reg.FindByFingerprint(key.Fingerprint)
				if owner != nil && owner.ID != id {
					return usage(fmt.Errorf("key %s already belongs to signer %q", key.Fingerprint, owner.ID),
						"a key belongs to one person; use a different key")
				}
				if owner == nil {
					if other, file := sameKey(reg, key); other != nil {
						return usage(fmt.Errorf("key %s is the key of signer %q (governance/%s) in another form", key.Fingerprint, other.ID, file),
							"a key belongs to one person and is listed once; use a different key")
					}
				}
				if s := reg.Lookup(id); s != nil {
					if len(roles) > 0 && !slices.Equal(slices.Sorted(slices.Values(roles)), slices.Sorted(slices.Values(s.Roles))) {
						return usage(fmt.Errorf("signer %q exists with roles [%s]", id, strings.Join(s.Roles, ", ")),
							"omit --role to add another key to the same person; roles of an existing signer do not change here")
					}
					if s.Revoked != nil {
						return failed(fmt.Errorf("signer %q is revoked", id), "a revoked signer stays revoked; add the person under a new id")
					}
					if owner == nil {
						s.Keys = append(s.Keys, ref)
						return nil
					}
					// A new file of a key the signer has: record it in place
					// of the old one, which earlier versions keep naming.
					for i, k := range s.Keys {
						if k.Fingerprint != key.Fingerprint {
							continue
						}
						if k.SHA256 == ref.SHA256 {
							return usage(fmt.Errorf("key %s of signer %q is already recorded as governance/%s", key.Fingerprint, id, k.File), "")
						}
						if pks := s.PublicKeys(); i < len(pks) {
							still := key.RevokedMaterial(a.now)
							for _, m := range pks[i].RevokedMaterial(a.now) {
								if !slices.Contains(still, m) {
									return failed(fmt.Errorf("key %s of signer %q is revoked in governance/%s, but not in %s", key.Fingerprint, id, k.File, keyPath),
										"an OpenPGP revocation cannot be undone; export the key with its revocation, or add a new key")
								}
							}
						}
						s.Keys[i] = ref
						updated = true
					}
					return nil
				}
				if len(roles) == 0 {
					return usage(errors.New("--role is required for a new signer"), "roles: "+strings.Join(signers.AllRoles, ", "))
				}
				reg.Signers = append(reg.Signers, &signers.Signer{
					ID: id, Name: name, Roles: roles,
					Keys:       []signers.KeyRef{ref},
					ValidAfter: va, ValidBefore: vb,
				})
				return nil
			})
			if err != nil {
				if created {
					r.Remove(repo.GovernanceDir + "/" + rel)
				}
				var e *Error
				if errors.As(err, &e) {
					return e
				}
				return registryError(err)
			}
			fmt.Fprintf(a.stdout, "%s\n", repo.GovernanceDir+"/"+rel)
			if updated {
				a.info("signer %s: key %s recorded anew from %s/%s in %s version %d", id, key.Summary(), repo.GovernanceDir, rel, repo.SignersFile, reg.Version)
			} else {
				a.info("signer %s added with key %s to %s version %d", id, key.Summary(), repo.SignersFile, reg.Version)
			}
			if reg.Version > 1 {
				a.info("version %d needs signatures from version %d's security signers: `groundzero signers sign`", reg.Version, reg.Version-1)
			}
			rec := a.recorder(r)
			rec.add("signers.add", id, map[string]any{"roles": roles, "key": key.Fingerprint, "file": repo.GovernanceDir + "/" + rel, "sha256": ref.SHA256, "version": reg.Version})
			return rec.flush(nil)
		},
	}
	c.Flags().StringVar(&id, "id", "", "signer id (lower-case letters, digits, . _ -)")
	c.Flags().StringVar(&name, "name", "", "the signer's full name (optional)")
	c.Flags().StringVar(&roleList, "role", "", "comma-separated roles: release, operator, approver, security, ci")
	c.Flags().StringVar(&keyPath, "key", "", "public key file (armored OpenPGP or SSH .pub)")
	c.Flags().StringVar(&after, "valid-after", "", "RFC 3339 time before which the signer's signatures do not count")
	c.Flags().StringVar(&before, "valid-before", "", "RFC 3339 time from which the signer's signatures do not count")
	return c
}
