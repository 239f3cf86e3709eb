package main

import (
	"path/filepath"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/sign/kmsfake"
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
func cmdKMS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 || (args[0] != "aws" && args[0] != "vault") {
		ts.Fatalf("usage: kms aws|vault [honest|other-key|raw|p384|mislabelled|rogue|echo]")
	}
	key := kmsKey{ts, args[0]}
	v, _ := kmsServers.Load(key)
	srv, _ := v.(*kmsfake.Server)
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
		ts.Defer(srv.Close)
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
