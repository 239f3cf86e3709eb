// Package sigfile keeps the detached signatures of a signed file beside it:
// FILE.asc holds OpenPGP signatures and FILE.sig holds SSH signatures. Both
// may exist; together they are the file's signature set.
package sigfile

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signature"
)

// Paths returns the two signature file paths for payload.
func Paths(payload string) []string {
	return []string{payload + signature.OpenPGP.Ext(), payload + signature.SSH.Ext()}
}

// Load reads every signature of payload. A missing signature file is not an
// error; a malformed one is, and names the file.
func Load(r *repo.Repo, payload string) ([]*signature.Signature, error) {
	var all []*signature.Signature
	for _, scheme := range []signature.Scheme{signature.OpenPGP, signature.SSH} {
		p := payload + scheme.Ext()
		data, err := r.ReadFile(p, signature.MaxFileSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sigs, err := signature.Parse(scheme, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, sigs...)
	}
	return all, nil
}

// Add merges sig into payload's signature file of its scheme. A signature by
// the same key replaces the earlier one.
func Add(r *repo.Repo, payload string, sig *signature.Signature) (string, error) {
	p := payload + sig.Scheme.Ext()
	var have []*signature.Signature
	data, err := r.ReadFile(p, signature.MaxFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return p, err
	default:
		if have, err = signature.Parse(sig.Scheme, data); err != nil {
			return p, fmt.Errorf("%s: %w", p, err)
		}
	}
	merged := signature.Merge(have, []*signature.Signature{sig})
	if len(merged) > signature.MaxSignatures {
		return p, fmt.Errorf("%s: already holds %d signatures", p, signature.MaxSignatures)
	}
	out, err := signature.Format(merged)
	if err != nil {
		return p, err
	}
	return p, r.WriteFile(p, out)
}

// Remove deletes both signature files of payload.
func Remove(r *repo.Repo, payload string) error {
	for _, p := range Paths(payload) {
		if err := r.Remove(p); err != nil {
			return err
		}
	}
	return nil
}
