package secretscan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/secretscan"
)

// The secrets below are assembled at run time, so that this file does not
// itself hold anything a scanner would flag. None is a live credential.
var (
	awsKeyID     = "AKIA" + "Z7VRSQ5CFY4GBWXP"
	awsSecret    = "9vH2mLq8R0tXwKc3NbJ5" + "pZy7DsA1uFgE6hTiVoWe"
	ghPAT        = "ghp_" + "R4nd0mT0k3nV4lu3F0rT3st1ngXyZ9aBcDeF"
	ghFine       = "github_pat_" + "11ABCDEFG0aBcDeFgHiJkL_" + "mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678"
	glPAT        = "glpat-" + "x9Kq2LmN8pR4sT6vW0yZ"
	glTrigger    = "glptt-" + "0f3a9c8e7d6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"
	glRunner     = "glrt-" + "aB3dE5fG7hJ9kL1mN3pQ"
	slackBot     = "xoxb-" + "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackUser    = "xoxp-" + "1234567890-1234567890-1234567890123-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	slackHook    = "https://hooks.slack.com/services/" + "T0ABCDEFG/B0HIJKLMN/aB3dE5fG7hJ9kL1mN3pQ5rS7"
	doPAT        = "dop_v1_" + "3f9a8c7e6d5b4a39f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a2910"
	vaultToken   = "hvs." + "CAESIJ2x9fK3mQ8pL7rT5vW1yZ0aB4cD6eF8gH0iJ2kL4mN6GiAKHGh2cy5xWnR5VjN4WkF3ZzJNcWJ0Q0V6TzVkZnYQ1ZwC"
	vaultLegacy  = "s." + "Fg8wA4nDrP08TirpjEXkrTmt"
	gcpAPIKey    = "AIza" + "SyD9x8W7v6U5t4S3r2Q1p0OnMlKjIhGfEdC"
	dbPassword   = "Tq7#vLm2!xR9@pWz4&"
	urlPassword  = "n8Vq2Lp7Xr4K"
	keyMaterial  = "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC7" + "q3X9mZ2Lr8vK0pT5wN1yB6cF4hJ7kM9sD2gQ8uW3xR5tA0eY"
	opensshBody  = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW" + "QyNTUxOQAAACDx7Xk2Q9pVm3R8sT4wL1yN6bF0hJ5kM2sD9gQ7uW4xRw"
	gcpKeyID     = "3f9a8c7e6d5b4a39f8e7d6c5b4a3928170f6e5d4"
	ociBodyShort = "MIIEowIBAAKCAQEAv4qA7d9zQ2mK8xL5pN1rT6wY3bF0hJ9kM2sD7gQ4uW8xR5tA"
)

type vector struct {
	name   string
	file   string
	text   string
	secret string // must never appear in any output
	rule   string
	line   int
}

func vectors() []vector {
	return []vector{
		{"aws key id in HCL", "infra/bootstrap/main.tf", "provider \"aws\" {\n  access_key = \"" + awsKeyID + "\"\n}\n", awsKeyID, "aws-access-token", 2},
		{"aws secret in credentials file", "infra/bootstrap/credentials", "[default]\naws_access_key_id=" + awsKeyID + "\naws_secret_access_key=" + awsSecret + "\n", awsSecret, "aws-secret-access-key", 3},
		{"aws secret in HCL", "infra/bootstrap/provider.tf", "provider \"aws\" {\n  region = \"eu-west-1\"\n  secret_key = \"" + awsSecret + "\"\n}\n", awsSecret, "aws-secret-access-key", 3},
		{"aws secret in JSON", "governance/x.json", "{\n  \"SecretAccessKey\": \"" + awsSecret + "\"\n}\n", awsSecret, "aws-secret-access-key", 2},
		{"PEM RSA key", "infra/bootstrap/tls.pem", "-----BEGIN RSA PRIVATE KEY-----\n" + keyMaterial + "\n" + keyMaterial + "\n-----END RSA PRIVATE KEY-----\n", keyMaterial, "private-key", 1},
		{"PKCS#8 key in a heredoc", "infra/bootstrap/oci.tf", "provider \"oci\" {\n  private_key = <<EOT\n-----BEGIN PRIVATE KEY-----\n" + ociBodyShort + "\n-----END PRIVATE KEY-----\nEOT\n}\n", ociBodyShort, "private-key", 3},
		{"encrypted PEM with headers", "infra/bootstrap/old.key", "x\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D4E5F60718293A4B5C6D7E8F9\n\n" + keyMaterial + "\n-----END RSA PRIVATE KEY-----\n", keyMaterial, "private-key", 2},
		{"OpenSSH key", "governance/keys/deploy", "-----BEGIN OPENSSH PRIVATE KEY-----\n" + opensshBody + "\n-----END OPENSSH PRIVATE KEY-----\n", opensshBody, "private-key", 1},
		{"PGP secret key block", "governance/keys/alice.key.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: exported\n\n" + keyMaterial + "\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n", keyMaterial, "private-key", 1},
		{"OCI key inline with escapes", "infra/bootstrap/oci.auto.tfvars", "private_key = \"-----BEGIN RSA PRIVATE KEY-----\\n" + ociBodyShort + "\\n-----END RSA PRIVATE KEY-----\\n\"\n", ociBodyShort, "private-key", 1},
		{"GCP service account JSON", "infra/bootstrap/sa.json", "{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key_id\": \"" + gcpKeyID + "\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n" + keyMaterial + "\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"a@p.iam.gserviceaccount.com\"\n}\n", keyMaterial, "private-key", 5},
		{"GCP service account shape", "infra/bootstrap/sa.json", "{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key_id\": \"" + gcpKeyID + "\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n" + keyMaterial + "\\n-----END PRIVATE KEY-----\\n\"\n}\n", gcpKeyID, "gcp-service-account-key", 4},
		{"GCP API key", "infra/bootstrap/vars.tfvars", "maps_key = \"" + gcpAPIKey + "\"\n", gcpAPIKey, "gcp-api-key", 1},
		{"GitHub PAT", "governance/ci.yaml", "env:\n  GH: " + ghPAT + "\n", ghPAT, "github-pat", 2},
		{"GitHub fine-grained PAT", "infra/bootstrap/gh.tf", "provider \"github\" {\n  token = \"" + ghFine + "\"\n}\n", ghFine, "github-fine-grained-pat", 2},
		{"GitLab PAT", "infra/bootstrap/gl.tf", "provider \"gitlab\" {\n  token = \"" + glPAT + "\"\n}\n", glPAT, "gitlab-pat", 2},
		{"GitLab trigger token", "infra/bootstrap/x.sh", "curl -F token=" + glTrigger + " https://gitlab.example/api\n", glTrigger, "gitlab-ptt", 1},
		{"GitLab runner token", "infra/bootstrap/runner.toml", "[[runners]]\n  token = \"" + glRunner + "\"\n", glRunner, "gitlab-runner-token", 2},
		{"Slack bot token", "governance/notify.yaml", "slack: " + slackBot + "\n", slackBot, "slack-bot-token", 1},
		{"Slack user token", "governance/notify.yaml", "\n\nslack: " + slackUser + "\n", slackUser, "slack-user-token", 3},
		{"Slack webhook", "infra/bootstrap/alerts.tf", "locals {\n  hook = \"" + slackHook + "\"\n}\n", slackHook[len("https://hooks.slack.com/services/"):], "slack-webhook-url", 2},
		{"DigitalOcean PAT", "infra/bootstrap/do.tf", "provider \"digitalocean\" {\n  token = \"" + doPAT + "\"\n}\n", doPAT, "digitalocean-pat", 2},
		{"Vault token", "infra/bootstrap/vault.tf", "provider \"vault\" {\n  token = \"" + vaultToken + "\"\n}\n", vaultToken, "vault-service-token", 2},
		{"Vault legacy token", "infra/bootstrap/vault.tf", "provider \"vault\" {\n  address = \"https://vault.example:8200\"\n  token = \"" + vaultLegacy + "\"\n}\n", vaultLegacy, "vault-service-token", 3},
		{"database password in HCL", "infra/bootstrap/db.tf", "resource \"aws_db_instance\" \"db\" {\n  username = \"admin\"\n  password = \"" + dbPassword + "\"\n}\n", dbPassword, "generic-secret", 3},
		{"password in YAML", "governance/app.yaml", "db:\n  user: app\n  password: " + dbPassword + "\n", dbPassword, "generic-secret", 3},
		{"credentials in a URL", "infra/bootstrap/backend.tf", "terraform {\n  backend \"pg\" {\n    conn_str = \"postgres://app:" + urlPassword + "@db.internal/state\"\n  }\n}\n", urlPassword, "url-credentials", 3},
	}
}

func TestScanBytesFinds(t *testing.T) {
	for _, v := range vectors() {
		t.Run(v.name, func(t *testing.T) {
			got := secretscan.ScanBytes(v.file, []byte(v.text))
			found := false
			for _, f := range got {
				if f.Rule == v.rule && f.Line == v.line && f.Path == v.file {
					found = true
				}
			}
			if !found {
				t.Errorf("ScanBytes(%s) = %v, want a %s finding on line %d", v.file, got, v.rule, v.line)
			}
		})
	}
}

// TestFindingsHoldNoSecret checks every form a finding takes: its String,
// its %v and %+v, JSON, and SARIF.
func TestFindingsHoldNoSecret(t *testing.T) {
	for _, v := range vectors() {
		got := secretscan.ScanBytes(v.file, []byte(v.text))
		if len(got) == 0 {
			t.Fatalf("%s: no finding", v.name)
		}
		j, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		s, err := json.Marshal(secretscan.SARIF(got))
		if err != nil {
			t.Fatal(err)
		}
		var forms []string
		for _, f := range got {
			forms = append(forms, f.String(), fmt.Sprintf("%v %+v %#v", f, f, f))
		}
		forms = append(forms, string(j), string(s))
		for _, form := range forms {
			// Any 8 consecutive bytes of the secret would be a leak.
			for i := 0; i+8 <= len(v.secret); i++ {
				if strings.Contains(form, v.secret[i:i+8]) {
					t.Fatalf("%s: output holds part of the secret (%q): %s", v.name, v.secret[i:i+8], form)
				}
			}
		}
	}
}

// Files of the kinds groundzero writes, and references to secrets, are not
// credentials.
func TestScanBytesIgnores(t *testing.T) {
	cases := []struct{ name, file, text string }{
		{"policy template", "governance/policy.yaml", string(policy.Template("s3", "prod", "s3://evidence/trail"))},
		{"demo policy template", "governance/policy.yaml", string(policy.Template("local", "dev", ""))},
		{"MANIFEST", "governance/MANIFEST", "# groundzero.manifest/v1 version=2 previous=6eae217d96a1e78adace226e37a39fe71a79a3828008a0612beabd6903308a1c\n7eda6e8f5a37fa58fc6e3cc68b7c63fe7230fa553cfdb344eded512db75ddf89  governance/keys/alice-ED697F39E62991F0.asc\n"},
		{"signers registry", "governance/signers.yaml", "version: 2\nthreshold: 2\nsigners:\n  - id: ci\n    roles: [ci]\n    keys:\n      - file: keys/ci-8a7bf3bf82b79682.pub\n        fingerprint: SHA256:invzv4K3loJg1xHLA9YH6CF2IIdsYgoF1+V/69ts41Q\n        sha256: 3c5c43b500dd6d95b445fba8db9240d91247236722649022eb45cf26294ce625\n"},
		{"SSH public key", "governance/keys/ci.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPx7Xk2Q9pVm3R8sT4wL1yN6bF0hJ5kM2sD9gQ7uW4xR ci@example\n"},
		{"PGP public key", "governance/keys/alice.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + keyMaterial + "\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"},
		{"PGP signature", "governance/MANIFEST.asc", "-----BEGIN PGP SIGNATURE-----\n\n" + keyMaterial + "\n=abcd\n-----END PGP SIGNATURE-----\n"},
		{"SSH signature", "governance/MANIFEST.sig", "-----BEGIN SSH SIGNATURE-----\n" + opensshBody + "\n-----END SSH SIGNATURE-----\n"},
		{"private key placeholder", "README.tf", "# private_key = \"-----BEGIN RSA PRIVATE KEY-----\\n...\\n-----END RSA PRIVATE KEY-----\"\n-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n"},
		{"AWS documentation keys", "infra/bootstrap/doc.tf", "# access_key = \"AKIAIOSFODNN7EXAMPLE\"\n# secret_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n"},
		{"references in HCL", "infra/bootstrap/db.tf", "resource \"aws_db_instance\" \"db\" {\n  password = random_password.db.result\n  master_password_secret_arn = \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-Xy12Ab\"\n  token = var.token\n  api_key = \"${var.api_key}\"\n  secret_name = \"prod/db/Tq7vLm2xR9pWz4\"\n  password_length = 32\n  token_sha256 = \"3c5c43b500dd6d95b445fba8db9240d91247236722649022eb45cf26294ce625\"\n  kms_key_id = \"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n}\n"},
		{"reference in YAML", "governance/app.yaml", "password: ${DB_PASSWORD}\ntoken: vault:secret/data/ci#token\napi_key: random_password.api.result\nsecret: {{ .Values.secret }}\n"},
		{"low-entropy placeholders", "governance/app.yaml", "password: changeme\ntoken: xxxxxxxxxxxxxxxx\nsecret: aaaaaaaaaaaa\n"},
		{"dotted names", "infra/bootstrap/main.tf", "locals {\n  b = aws_s3_bucket.this.id\n  c = \"buckets.Fg8wA4nDrP08TirpjEXkrTmt\"\n}\n"},
		{"URL without password", "infra/bootstrap/main.tf", "source = \"git::ssh://git@github.com/org/repo.git?ref=v1.2.3\"\nurl = \"https://user:${var.password}@host/x\"\n# conn_str = \"postgres://user:password@localhost/db\"\n"},
		{"binary file", "infra/bootstrap/blob.bin", "\x00\x01" + awsKeyID},
	}
	for _, c := range cases {
		if got := secretscan.ScanBytes(c.file, []byte(c.text)); len(got) != 0 {
			t.Errorf("%s: ScanBytes(%s) = %v, want none", c.name, c.file, got)
		}
	}
}

func TestKeyStoreByName(t *testing.T) {
	for _, name := range []string{"infra/bootstrap/certs/client.p12", "governance/keys/id_ed25519", "infra/bootstrap/app.jks"} {
		got := secretscan.ScanBytes(name, []byte("\x00\x01\x02"))
		if len(got) != 1 || got[0].Rule != "private-key-file" || got[0].Line != 0 {
			t.Errorf("ScanBytes(%s) = %v, want one private-key-file finding", name, got)
		}
	}
	if got := secretscan.ScanBytes("governance/keys/id_ed25519.pub", []byte("ssh-ed25519 AAAA x\n")); len(got) != 0 {
		t.Errorf("ScanBytes(id_ed25519.pub) = %v, want none", got)
	}
}

// A token that a specific rule knows is not reported again by the generic
// rule on the same line.
func TestSpecificRuleWins(t *testing.T) {
	got := secretscan.ScanBytes("infra/bootstrap/gh.tf", []byte("token = \""+ghFine+"\"\n"))
	if len(got) != 1 || got[0].Rule != "github-fine-grained-pat" {
		t.Errorf("ScanBytes = %v, want only github-fine-grained-pat", got)
	}
}

func TestOneFindingPerRuleAndLine(t *testing.T) {
	text := "a = \"" + awsKeyID + "\" b = \"" + awsKeyID + "\"\n"
	got := secretscan.ScanBytes("infra/bootstrap/x.tf", []byte(text))
	if len(got) != 1 {
		t.Errorf("ScanBytes = %v, want one finding", got)
	}
}

func TestWaive(t *testing.T) {
	fs := []secretscan.Finding{
		{Path: "a.tf", Line: 3, Rule: "generic-secret"},
		{Path: "a.tf", Line: 9, Rule: "generic-secret"},
		{Path: "b.tf", Line: 1, Rule: "private-key"},
	}
	ws := []secretscan.Waiver{
		{Rule: "generic-secret", Path: "a.tf", Line: 9},
		{Rule: "private-key", Path: "b.tf"},
		{Rule: "private-key", Path: "a.tf"},
		{Rule: "generic-secret", Path: "a.tf", Line: 4},
	}
	kept, waived, unused := secretscan.Waive(fs, ws)
	if len(kept) != 1 || kept[0].Line != 3 {
		t.Errorf("kept = %v, want a.tf:3", kept)
	}
	if len(waived) != 2 {
		t.Errorf("waived = %v, want two", waived)
	}
	if len(unused) != 2 || unused[0] != ws[2] || unused[1] != ws[3] {
		t.Errorf("unused = %v, want the last two waivers", unused)
	}
}

func TestRuleIDsUnique(t *testing.T) {
	ids := secretscan.RuleIDs()
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) {
		t.Errorf("RuleIDs() = %v, has duplicates", ids)
	}
}

// A waiver names a rule that policy.yaml's schema allows: the two lists are
// the same.
func TestSchemaNamesEveryRule(t *testing.T) {
	var doc struct {
		Properties struct {
			Secrets struct {
				Properties struct {
					Waive struct {
						Items struct {
							Properties struct {
								Rule struct {
									Enum []string `json:"enum"`
								} `json:"rule"`
							} `json:"properties"`
						} `json:"items"`
					} `json:"waive"`
				} `json:"properties"`
			} `json:"secrets"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(policy.SchemaJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(doc.Properties.Secrets.Properties.Waive.Items.Properties.Rule.Enum))
	want := slices.Sorted(slices.Values(secretscan.RuleIDs()))
	if !slices.Equal(got, want) {
		t.Errorf("schema secrets.waive[].rule enum = %v, want %v", got, want)
	}
}

func writeRepo(t testing.TB, files map[string]string) *repo.Repo {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &repo.Repo{Root: root}
}

func TestScan(t *testing.T) {
	r := writeRepo(t, map[string]string{
		"infra/bootstrap/b.tf":   "x = 1\npassword = \"" + dbPassword + "\"\n",
		"infra/bootstrap/a.tf":   "\n\nk = \"" + awsKeyID + "\"\n",
		"governance/policy.yaml": string(policy.Template("s3", "prod", "")),
	})
	got, err := secretscan.Scan(context.Background(), r, []string{"governance/policy.yaml", "infra/bootstrap/b.tf", "infra/bootstrap/a.tf"})
	if err != nil {
		t.Fatal(err)
	}
	want := []secretscan.Finding{
		{Path: "infra/bootstrap/a.tf", Line: 3, Rule: "aws-access-token", Description: secretscan.Lookup("aws-access-token").Description},
		{Path: "infra/bootstrap/b.tf", Line: 2, Rule: "generic-secret", Description: secretscan.Lookup("generic-secret").Description},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Scan = %v, want %v", got, want)
	}
}

func TestScanRefusesSymlink(t *testing.T) {
	r := writeRepo(t, map[string]string{"outside": "password = \"" + dbPassword + "\"\n", "infra/bootstrap/x": ""})
	if err := os.Symlink(filepath.Join(r.Root, "outside"), r.Abs("infra/bootstrap/a.tf")); err != nil {
		t.Fatal(err)
	}
	_, err := secretscan.Scan(context.Background(), r, []string{"infra/bootstrap/a.tf"})
	var fe *secretscan.FileError
	if !errors.As(err, &fe) || fe.Path != "infra/bootstrap/a.tf" {
		t.Fatalf("Scan(symlink) = %v, want a *FileError naming it", err)
	}
	if strings.Contains(err.Error(), dbPassword) {
		t.Errorf("error holds the secret: %v", err)
	}
}

func FuzzScanBytes(f *testing.F) {
	for _, v := range vectors() {
		f.Add(v.file, []byte(v.text))
	}
	f.Add("governance/policy.yaml", policy.Template("s3", "prod", ""))
	f.Add("a.tf", []byte("password = \"\nsecret: '\x00"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		got := secretscan.ScanBytes(name, data)
		lines := strings.Count(string(data), "\n") + 1
		for _, f := range got {
			r := secretscan.Lookup(f.Rule)
			switch {
			case r == nil:
				t.Fatalf("finding %v has an unknown rule", f)
			case f.Path != name || f.Description != r.Description:
				// Every field comes from the rule table or the name: no
				// byte of the content can reach a finding.
				t.Fatalf("finding %v does not come from rule %s and name %q", f, r.ID, name)
			case f.Line < 0 || f.Line > lines:
				t.Fatalf("finding %v: line outside 0..%d", f, lines)
			}
		}
		again := secretscan.ScanBytes(name, data)
		if !slices.Equal(got, again) {
			t.Fatalf("ScanBytes is not deterministic: %v then %v", got, again)
		}
	})
}
