package signature

import (
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	pgpecdh "github.com/ProtonMail/go-crypto/openpgp/ecdh"
	pgpecdsa "github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	pgped25519 "github.com/ProtonMail/go-crypto/openpgp/ed25519"
	pgped448 "github.com/ProtonMail/go-crypto/openpgp/ed448"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/elgamal"
	"github.com/ProtonMail/go-crypto/openpgp/mldsa_eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/mlkem_ecdh"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/slhdsa"
	"github.com/ProtonMail/go-crypto/openpgp/x25519"
	"github.com/ProtonMail/go-crypto/openpgp/x448"
	"golang.org/x/crypto/ssh"
)

// Material returns the canonical identities of the key material k holds: for
// an OpenPGP certificate its primary key and every subkey, for an SSH key the
// key. Two keys that share an identity are one key, whatever their format,
// fingerprint, creation time or packet version, so a registry can tell that
// an ed25519 key listed as an OpenPGP certificate and as an SSH key line is
// one person's key (T2, T31).
//
// An identity is the algorithm family, then the public values in lower-case
// hex, separated by colons:
//
//	ed25519:<32-byte point>          OpenPGP EdDSA (legacy, curve Ed25519) and Ed25519 (v6),
//	                                 SSH ssh-ed25519 and sk-ssh-ed25519
//	ed448:<57-byte point>
//	ecdsa:<curve>:<uncompressed point>   curve as Go names it: P-256, P-384, P-521, …;
//	                                 OpenPGP ECDSA, SSH ecdsa-sha2-* and sk-ecdsa-sha2-nistp256
//	rsa:<modulus>:<decimal exponent>
//	x25519:<point>, x448:<point>, ecdh:<curve>:<point>   OpenPGP encryption subkeys
//	dsa:<p>:<q>:<g>:<y>, elgamal:<p>:<g>:<y>
//
// A security key (sk-…) has the same identity as the plain key with its
// point: the point is the key, and the application string does not make it
// another person's. Post-quantum composite OpenPGP keys give one identity per
// component (the classical point as above, the post-quantum key as its
// scheme name and encoding). A key of an algorithm not listed here gives
// "openpgp-<algorithm>:<fingerprint>", which matches only itself.
//
// Each identity appears once; the order is the primary key, then subkeys.
func (k *PublicKey) Material() []string {
	var ids []string
	add := func(more ...string) {
		for _, id := range more {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if k.Scheme == SSH {
		add(sshMaterial(k.ssh))
		return ids
	}
	add(pgpMaterial(k.entity.PrimaryKey)...)
	for _, sk := range k.entity.Subkeys {
		add(pgpMaterial(sk.PublicKey)...)
	}
	return ids
}

func sshMaterial(pub ssh.PublicKey) string {
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return "ssh-" + pub.Type() + ":" + ssh.FingerprintSHA256(pub)
	}
	switch key := cpk.CryptoPublicKey().(type) {
	case ed25519.PublicKey:
		return fmt.Sprintf("ed25519:%x", []byte(key))
	case *ecdsa.PublicKey:
		if id, ok := ecdsaMaterial(key); ok {
			return id
		}
	case *rsa.PublicKey:
		return rsaMaterial(key)
	}
	return "ssh-" + pub.Type() + ":" + ssh.FingerprintSHA256(pub)
}

func ecdsaMaterial(key *ecdsa.PublicKey) (string, bool) {
	e, err := key.ECDH()
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("ecdsa:%s:%x", key.Curve.Params().Name, e.Bytes()), true
}

func rsaMaterial(key *rsa.PublicKey) string {
	return fmt.Sprintf("rsa:%x:%d", key.N.Bytes(), key.E)
}

// pgpMaterial names one OpenPGP key packet's material.
func pgpMaterial(pk *packet.PublicKey) []string {
	switch key := pk.PublicKey.(type) {
	case *rsa.PublicKey:
		return []string{rsaMaterial(key)}
	case *dsa.PublicKey:
		return []string{fmt.Sprintf("dsa:%x:%x:%x:%x", key.P.Bytes(), key.Q.Bytes(), key.G.Bytes(), key.Y.Bytes())}
	case *elgamal.PublicKey:
		return []string{fmt.Sprintf("elgamal:%x:%x:%x", key.P.Bytes(), key.G.Bytes(), key.Y.Bytes())}
	case *pgpecdsa.PublicKey:
		// MarshalPoint is the uncompressed SEC 1 point, as ECDH().Bytes()
		// gives it for an SSH key.
		return []string{fmt.Sprintf("ecdsa:%s:%x", key.GetCurve().GetCurveName(), key.MarshalPoint())}
	case *eddsa.PublicKey:
		// Legacy EdDSA: X is the native point without the 0x40 prefix.
		if name := key.GetCurve().GetCurveName(); name == "ed25519" || name == "ed448" {
			return []string{fmt.Sprintf("%s:%x", name, key.X)}
		}
	case *pgped25519.PublicKey:
		return []string{fmt.Sprintf("ed25519:%x", key.Point)}
	case *pgped448.PublicKey:
		return []string{fmt.Sprintf("ed448:%x", key.Point)}
	case *pgpecdh.PublicKey:
		// Point is native for curve25519 and curve448, uncompressed otherwise.
		switch name := key.GetCurve().GetCurveName(); name {
		case "curve25519":
			return []string{fmt.Sprintf("x25519:%x", key.Point)}
		case "x448":
			return []string{fmt.Sprintf("x448:%x", key.Point)}
		default:
			return []string{fmt.Sprintf("ecdh:%s:%x", name, key.Point)}
		}
	case *x25519.PublicKey:
		return []string{fmt.Sprintf("x25519:%x", key.Point)}
	case *x448.PublicKey:
		return []string{fmt.Sprintf("x448:%x", key.Point)}
	case *mldsa_eddsa.PublicKey:
		if pq, err := key.PublicMldsa.MarshalBinary(); err == nil {
			return []string{
				fmt.Sprintf("%s:%x", key.Curve.GetCurveName(), key.PublicPoint),
				fmt.Sprintf("%s:%x", strings.ToLower(key.Mldsa.Name()), pq),
			}
		}
	case *mlkem_ecdh.PublicKey:
		if pq, err := key.PublicMlkem.MarshalBinary(); err == nil {
			ec := key.Curve.GetCurveName()
			switch ec {
			case "curve25519":
				ec = "x25519"
			}
			return []string{
				fmt.Sprintf("%s:%x", ec, key.PublicPoint),
				fmt.Sprintf("%s:%x", strings.ToLower(key.Mlkem.Name()), pq),
			}
		}
	case *slhdsa.PublicKey:
		if pq, err := key.PublicSlhdsa.MarshalBinary(); err == nil {
			return []string{fmt.Sprintf("%s:%x", strings.ToLower(key.Slhdsa.Name()), pq)}
		}
	}
	return []string{fmt.Sprintf("openpgp-%d:%X", pk.PubKeyAlgo, pk.Fingerprint)}
}

// RevokedMaterial returns the identities, as Material names them, of the keys
// in k that are revoked at now: every key of a revoked OpenPGP certificate,
// or the keys of its revoked subkeys. SSH keys carry no revocations.
func (k *PublicKey) RevokedMaterial(now time.Time) (ids []string) {
	if k.Scheme != OpenPGP {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			ids = k.Material() // fail closed on unverifiable revocation data
		}
	}()
	if k.entity.Revoked(now) {
		return k.Material()
	}
	for i := range k.entity.Subkeys {
		sk := &k.entity.Subkeys[i]
		if sk.Revoked(nil, now) {
			for _, id := range pgpMaterial(sk.PublicKey) {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}
