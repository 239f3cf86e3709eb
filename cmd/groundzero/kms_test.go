package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
	"github.com/groundzero/groundzero/internal/sshsig"
)

// Signing keys held in a KMS: a fake AWS KMS or Vault transit engine on
// 127.0.0.1 holding a real P-256 key (internal/sign/kmsfake).
func init() {
	commands["kms"] = cmdKMS
}

const (
	kmsKeyARN      = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	kmsAccessKeyID = "AKIATESTKMSSIGNER000"
	// Canaries: the credentials the KMS client holds; no output may show them.
	kmsAWSSecret  = "CANARYawsSECRETkey0000000000000000000000"
	kmsAWSSession = "CANARYawsSESSIONtoken000000000000"
	kmsVaultToken = "hvsCANARYvaultTOKEN000000000000"
)

var kmsServers sync.Map // *testscript.TestScript + kind → *kmsfake.Server

// kmsSeen is how many of a server's calls `kms KIND calls` has printed.
var kmsSeen sync.Map // kmsKey → int

type kmsKey struct {
	ts   *testscript.TestScript
	kind string
}

// kms aws|vault [MODE] starts, for the rest of the script, a fake AWS KMS
// or Vault transit engine holding a P-256 key, and sets the environment a
// CI job would have: for aws, AWS_ENDPOINT_URL_KMS, AWS_REGION and the
// canary credentials AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN; for vault, VAULT_ADDR and the canary VAULT_TOKEN. It
// sets $KMS_KEY to the KEYSPEC and $KMS_SECRETS to a regexp matching any
// canary. Called again, it sets how the service answers from now on:
// honest, other-key (signs with another key), raw (r||s, not DER), p384,
// mislabelled (claims P-256, publishes P-384), rogue (publishes and signs
// with a key of its own), echo (errors repeat the request's headers).
//
// kms aws|vault calls prints, one a line, the requests the service received
// since the last `calls`: OPERATION KEY, and for a signature ALGORITHM
// MESSAGE-TYPE sha256:DIGEST (Vault: the input, prehashed or not).
//
// [!] kms aws|vault signed FILE succeeds when the SSHSIG signature in
// FILE.sig over FILE was made from a digest the service was asked to sign:
// SHA-256 of the signed data PROTOCOL.sshsig defines (the namespace and hash
// algorithm taken from the signature).
func cmdKMS(ts *testscript.TestScript, neg bool, args []string) {
	usage := "usage: kms aws|vault [honest|other-key|raw|p384|mislabelled|rogue|echo|calls|signed FILE]"
	if len(args) < 1 || (args[0] != "aws" && args[0] != "vault") {
		ts.Fatalf("%s", usage)
	}
	key := kmsKey{ts, args[0]}
	v, _ := kmsServers.Load(key)
	srv, _ := v.(*kmsfake.Server)
	if len(args) >= 2 && (args[1] == "calls" || args[1] == "signed") {
		if srv == nil {
			ts.Fatalf("kms %s %s: no %s service started", args[0], args[1], args[0])
		}
		switch {
		case args[1] == "calls" && len(args) == 2 && !neg:
			kmsPrintCalls(ts, key, srv)
		case args[1] == "signed" && len(args) == 3:
			kmsSigned(ts, neg, srv, args[2])
		default:
			ts.Fatalf("%s", usage)
		}
		return
	}
	if neg || len(args) > 2 {
		ts.Fatalf("%s", usage)
	}
	if srv == nil {
		switch args[0] {
		case "aws":
			srv = kmsfake.AWS(kmsKeyARN, kmsAccessKeyID)
			none := filepath.Join(ts.Getenv("WORK"), ".aws-none")
			for k, v := range map[string]string{
				"AWS_ENDPOINT_URL_KMS":        srv.URL,
				"AWS_REGION":                  "eu-west-1",
				"AWS_ACCESS_KEY_ID":           kmsAccessKeyID,
				"AWS_SECRET_ACCESS_KEY":       kmsAWSSecret,
				"AWS_SESSION_TOKEN":           kmsAWSSession,
				"AWS_CONFIG_FILE":             none,
				"AWS_SHARED_CREDENTIALS_FILE": none,
				"AWS_EC2_METADATA_DISABLED":   "true",
				"KMS_KEY":                     "awskms:" + kmsKeyARN,
			} {
				ts.Setenv(k, v)
			}
		case "vault":
			srv = kmsfake.Vault("transit", "groundzero-ci", kmsVaultToken)
			ts.Setenv("VAULT_ADDR", srv.URL)
			ts.Setenv("VAULT_TOKEN", kmsVaultToken)
			ts.Setenv("KMS_KEY", "vault:groundzero-ci")
		}
		ts.Defer(func() {
			srv.Close()
			kmsServers.Delete(key)
			kmsSeen.Delete(key)
		})
		kmsServers.Store(key, srv)
		ts.Setenv("KMS_SECRETS", kmsAWSSecret+"|"+kmsAWSSession+"|"+kmsVaultToken)
	}
	if len(args) == 2 {
		mode := kmsfake.Mode(args[1])
		if args[1] == "honest" {
			mode = kmsfake.Honest
		}
		srv.SetMode(mode)
	}
}

func kmsPrintCalls(ts *testscript.TestScript, key kmsKey, srv *kmsfake.Server) {
	out := ts.Stdout() // set even when nothing is printed
	calls := srv.Calls()
	v, _ := kmsSeen.Load(key)
	seen, _ := v.(int)
	kmsSeen.Store(key, len(calls))
	for _, c := range calls[seen:] {
		line := c.Operation + " " + c.Key
		switch {
		case c.Digest != nil:
			line += fmt.Sprintf(" %s %s sha256:%x", c.Algorithm, c.Message, c.Digest)
		case c.Input != nil:
			line += fmt.Sprintf(" %s %s prehashed=%t input:%x", c.Algorithm, c.Message, c.Prehashed, c.Input)
		}
		fmt.Fprintln(out, line)
	}
}

func kmsSigned(ts *testscript.TestScript, neg bool, srv *kmsfake.Server, file string) {
	msg, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	armored, err := os.ReadFile(ts.MkAbs(file) + ".sig")
	ts.Check(err)
	blobs, err := sshsig.Unarmor(armored, 16)
	ts.Check(err)
	if len(blobs) != 1 {
		ts.Fatalf("%s.sig holds %d signatures, want 1", file, len(blobs))
	}
	sig, err := sshsig.Parse(blobs[0])
	ts.Check(err)
	var h []byte
	switch sig.HashAlg {
	case "sha512":
		s := sha512.Sum512(msg)
		h = s[:]
	case "sha256":
		s := sha256.Sum256(msg)
		h = s[:]
	default:
		ts.Fatalf("%s.sig: hash algorithm %q", file, sig.HashAlg)
	}
	// PROTOCOL.sshsig: the signed data, which an ECDSA P-256 key signs
	// through SHA-256.
	data := ssh.Marshal(struct {
		Magic     [6]byte
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{[6]byte{'S', 'S', 'H', 'S', 'I', 'G'}, sig.Namespace, "", sig.HashAlg, h})
	digest := sha256.Sum256(data)
	found := false
	for _, c := range srv.Calls() {
		if c.Operation != "Sign" && c.Operation != "AsymmetricSign" {
			continue
		}
		d := c.Digest
		if c.Input != nil {
			d = c.Input
			if !c.Prehashed {
				s := sha256.Sum256(c.Input)
				d = s[:]
			}
		}
		if bytes.Equal(d, digest[:]) {
			found = true
		}
	}
	switch {
	case found && neg:
		ts.Fatalf("the service was asked to sign %s (digest %s)", file, hex.EncodeToString(digest[:]))
	case !found && !neg:
		ts.Fatalf("the service was never asked to sign %s (digest %s, namespace %s)", file, hex.EncodeToString(digest[:]), sig.Namespace)
	}
	ts.Logf("%s: digest %s, namespace %s, signed by the service: %t", file, hex.EncodeToString(digest[:]), sig.Namespace, found)
}
