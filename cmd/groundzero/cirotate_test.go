package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/cicred/cicredfake"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// Commands for ci rotate: MinIO's admin API in front of a real S3 gateway
// with its own IAM, and a Vault KV v2 engine.
func init() {
	commands["cirotatefakes"] = cmdCIRotateFakes
	commands["cifail"] = cmdCIFail
	commands["civault"] = cmdCIVault
	commands["cikey"] = cmdCIKey
	commands["cinosecret"] = cmdCINoSecret
}

type ciFakes struct {
	gw    *s3gateway.Gateway
	minio *cicredfake.MinIO
	vault *cicredfake.Vault
}

var ciRigs sync.Map // *testscript.TestScript → *ciFakes

func ciRig(ts *testscript.TestScript) *ciFakes {
	v, _ := ciRigs.Load(ts)
	f, _ := v.(*ciFakes)
	if f == nil {
		ts.Fatalf("run cirotatefakes first")
	}
	return f
}

// cirotatefakes starts, for the rest of the script, a Versity gateway with
// its own IAM and a bucket tfstate, MinIO's admin API for it (one endpoint
// with the gateway's S3 API: $MINIO_ENDPOINT, admin identity in
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and a KV v2 engine at mount
// secret ($CI_VAULT, token in VAULT_TOKEN and $CI_VAULT_TOKEN).
func cmdCIRotateFakes(ts *testscript.TestScript, neg bool, args []string) {
	gw, err := s3gateway.StartWith(filepath.Join(ts.Getenv("WORK"), ".cigateway"), s3gateway.Options{IAM: true})
	ts.Check(err)
	ts.Defer(gw.Stop)
	ts.Check(gw.CreateBucket("tfstate", false))
	m := cicredfake.NewMinIO(gw, "tfstate")
	ms := httptest.NewServer(m.Handler())
	ts.Defer(ms.Close)
	v := cicredfake.NewVault("hvs.CANARY-ci-rotate-token-5e2b", "secret")
	vs := httptest.NewServer(v)
	ts.Defer(vs.Close)
	ts.Defer(func() {
		for _, u := range append(m.Unexpected, v.Unexpected...) {
			ts.Logf("fake refused: %s", u)
		}
	})
	for k, val := range map[string]string{
		"MINIO_ENDPOINT": ms.URL, "CI_VAULT": vs.URL, "VAULT_TOKEN": v.Token, "CI_VAULT_TOKEN": v.Token,
		"AWS_ACCESS_KEY_ID": m.AdminAccess, "AWS_SECRET_ACCESS_KEY": m.AdminSecret,
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		ts.Setenv(k, val)
	}
	ciRigs.Store(ts, &ciFakes{gw: gw, minio: m, vault: v})
}

// cifail vault-write|minio-add|minio-delete on|off makes that call fail.
func cmdCIFail(ts *testscript.TestScript, neg bool, args []string) {
	f := ciRig(ts)
	if len(args) != 2 {
		ts.Fatalf("usage: cifail vault-write|minio-add|minio-delete on|off")
	}
	on := args[1] == "on"
	switch args[0] {
	case "vault-write":
		f.vault.FailWrites = on
	case "minio-add":
		f.minio.FailAdd = on
	case "minio-delete":
		f.minio.FailDelete = on
	default:
		ts.Fatalf("cifail: unknown call %s", args[0])
	}
}

// civault PATH VERSION asserts that the secret at PATH (under the mount)
// is at VERSION and sets $KEYID to its access key id.
func cmdCIVault(ts *testscript.TestScript, neg bool, args []string) {
	f := ciRig(ts)
	if len(args) != 2 {
		ts.Fatalf("usage: civault PATH VERSION")
	}
	d, v := f.vault.Current(args[0])
	if got := strconv.Itoa(v); (got == args[1]) == neg {
		ts.Fatalf("%s is at version %s, want %s%s", args[0], got, map[bool]string{true: "not ", false: ""}[neg], args[1])
	}
	id, _ := d["access_key_id"].(string)
	ts.Setenv("KEYID", id)
}

// cikey ID asserts that the key ID lists the tfstate bucket's dev prefix on
// the gateway; ! cikey ID that the gateway refuses it.
func cmdCIKey(ts *testscript.TestScript, neg bool, args []string) {
	f := ciRig(ts)
	if len(args) != 1 {
		ts.Fatalf("usage: cikey ID")
	}
	secret := f.minio.Secret(args[0])
	if secret == "" {
		ts.Fatalf("no key %s was ever made", args[0])
	}
	_, err := f.gw.ClientAs(args[0], secret).ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String("tfstate"), Prefix: aws.String("org/dev/")})
	if (err == nil) == neg {
		ts.Fatalf("key %s: works %v, want %v (%v)", args[0], err == nil, !neg, err)
	}
}

// cinosecret PATH... asserts that no secret — of a key MinIO made, MinIO's
// admin key, the Vault token — appears in the files, or under the
// directories, given.
func cmdCINoSecret(ts *testscript.TestScript, neg bool, args []string) {
	f := ciRig(ts)
	secrets := append(f.minio.Secrets(), f.vault.Token)
	if len(secrets) < 4 {
		ts.Fatalf("cinosecret: only %d secrets known: the canary proves nothing yet", len(secrets))
	}
	n := 0
	for _, a := range args {
		filepath.Walk(ts.MkAbs(a), func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(p)
			n++
			for _, s := range secrets {
				if strings.Contains(string(data), s) {
					ts.Fatalf("%s holds secret %.4s…", p, s)
				}
			}
			return nil
		})
	}
	if n == 0 {
		ts.Fatalf("cinosecret: no file under %v", args)
	}
}
