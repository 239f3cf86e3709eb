package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/pinned"
)

// variants covers every template with every key provider it takes.
func variants() map[string]Values {
	base := func(kind string) Values {
		return Values{Kind: kind, Bucket: "acme-tfstate", StateKey: "org/prod/terraform.tfstate", Region: "eu-west-1", Lock: LockFile}
	}
	v := map[string]Values{}
	s3 := base(KindS3)
	s3.Endpoint = "http://127.0.0.1:9" // nothing listens: init fails at once
	s3.KeyProvider, s3.KeyID, s3.Encrypt = KeyAWSKMS, "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true
	v["s3-aws_kms"] = s3
	s3d := s3
	s3d.Lock, s3d.LockTable, s3d.Encrypt = LockDynamoDB, "acme-tfstate-lock", false
	v["s3-dynamodb"] = s3d
	bao := base(KindS3)
	bao.KeyProvider, bao.KeyAddress, bao.KeyMount, bao.KeyName, bao.Encrypt = KeyOpenBao, "https://vault.example.test:8200", "transit", "tfstate", true
	v["s3-openbao"] = bao
	minio := base(KindMinIO)
	minio.Endpoint, minio.KeyProvider = "http://127.0.0.1:9000", KeyNone
	v["minio-none"] = minio
	mp := minio
	mp.KeyProvider, mp.Encrypt = KeyPBKDF2, true
	v["minio-pbkdf2"] = mp
	mig := mp
	mig.Migrate = true
	v["minio-pbkdf2-migrate"] = mig
	sp := base(KindSpaces)
	sp.Endpoint, sp.KeyProvider, sp.Encrypt = "http://127.0.0.1:9", KeyPBKDF2, true
	v["spaces-pbkdf2"] = sp
	oci := base(KindOCI)
	oci.Endpoint, oci.KeyProvider, oci.KeyID = "http://127.0.0.1:9", KeyOCIVault, "ocid1.key.oc1.eu-frankfurt-1.aaaa"
	v["oci-vault"] = oci
	gcs := base(KindGCS)
	gcs.KeyProvider, gcs.KeyID, gcs.Encrypt = KeyGCPKMS, "projects/acme/locations/europe/keyRings/tfstate/cryptoKeys/state", true
	gcs.Endpoint = "http://127.0.0.1:9/storage/v1/" // nothing listens: init fails at once
	v["gcs-gcp_kms"] = gcs
	local := Values{Kind: KindLocal, Path: "terraform.tfstate", KeyProvider: KeyNone}
	v["local"] = local
	return v
}

func templateFor(t *testing.T, v Values, native bool) *Template {
	t.Helper()
	tp, err := TemplateFor(v.Kind, native)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestRenderIsDeterministic(t *testing.T) {
	for name, v := range variants() {
		tp := templateFor(t, v, false)
		a, err := tp.Render(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := 0; i < 3; i++ {
			b, err := tp.Render(v)
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("%s: rendering %d differs", name, i)
			}
		}
		// Every value reaches the output: a different bucket renders
		// different bytes.
		w := v
		w.Bucket, w.Path = "other-bucket", "other.tfstate"
		if c, _ := tp.Render(w); bytes.Equal(a, c) {
			t.Errorf("%s: a different bucket or path renders the same bytes", name)
		}
	}
}

func TestTemplateSHA256IsTheFilesConcatenated(t *testing.T) {
	if len(Templates()) != 4 {
		t.Fatalf("%d templates embedded", len(Templates()))
	}
	for _, tp := range Templates() {
		h := sha256.New()
		for _, f := range tp.Files {
			data, err := os.ReadFile(filepath.Join("templates", f))
			if err != nil {
				t.Fatal(err)
			}
			h.Write(data)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != tp.SHA256 {
			t.Errorf("%s: sha256 %s, files hash to %s", tp.Name, tp.SHA256, got)
		}
		if TemplateBySHA256(tp.SHA256) != tp {
			t.Errorf("%s: not found by its SHA-256", tp.Name)
		}
	}
	if TemplateBySHA256(strings.Repeat("0", 64)) != nil {
		t.Error("an unknown SHA-256 found a template")
	}
}

func TestRenderRefusesWhatIsNotALiteral(t *testing.T) {
	v := variants()["minio-none"]
	for _, bad := range []string{`a"b`, "a\\b", "${var.x}", "%{if}", "a\nb", "a b", "a\x00"} {
		w := v
		w.Bucket = bad
		if out, err := templateFor(t, w, false).Render(w); err == nil {
			t.Errorf("bucket %q rendered:\n%s", bad, out)
		}
	}
	w := v
	w.Encrypt = true // key provider none cannot encrypt state
	if _, err := templateFor(t, w, false).Render(w); err == nil {
		t.Error("state encryption rendered with key provider none")
	}
}

func TestEncryptionIsEnforcedExceptForTheMigration(t *testing.T) {
	for name, v := range variants() {
		out, err := templateFor(t, v, false).Render(v)
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		switch {
		case !v.Encrypt && strings.Contains(s, "encryption {"):
			t.Errorf("%s: an encryption block without encryption", name)
		case v.Encrypt && v.Migrate && !strings.Contains(s, "state {\n      method = method.aes_gcm.state\n      fallback {"):
			t.Errorf("%s: the migration form must fall back to unencrypted reads, not enforce", name)
		case v.Encrypt && !v.Migrate && (!strings.Contains(s, "enforced = true") || strings.Contains(s, "unencrypted")):
			t.Errorf("%s: state encryption is not enforced:\n%s", name, s)
		case v.Encrypt && !strings.Contains(s, `key_provider "`+v.KeyProvider+`" "state"`):
			t.Errorf("%s: no %s key provider", name, v.KeyProvider)
		}
	}
}

// TestRenderedFilesAreWhatOpenTofuReads runs the pinned OpenTofu on every
// rendering: `tofu fmt` leaves it as it is, and `tofu init` finds no
// argument it does not know in the backend or encryption blocks. The
// renderings whose store runs here are used for real in the bootstrap
// tests.
func TestRenderedFilesAreWhatOpenTofuReads(t *testing.T) {
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range variants() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, err := templateFor(t, v, false).Render(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "backend.tf"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			// init reads the configuration first and refuses an unknown
			// argument at once; past that it is reaching for the store or
			// the key, which do not exist here, so it is stopped after a
			// few seconds.
			run := func(args ...string) string {
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, tofu, args...)
				cmd.Dir = dir
				cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TF_CLI_CONFIG_FILE=/dev/null", "TF_DATA_DIR=" + filepath.Join(dir, "data"),
					"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x",
					"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "GOOGLE_OAUTH_ACCESS_TOKEN=x",
					"TF_VAR_" + PassphraseVar + "=correct-horse-battery-staple"}
				b, _ := cmd.CombinedOutput()
				return string(b)
			}
			if got := run("fmt", "-check", "-diff", "-no-color", "backend.tf"); got != "" {
				t.Errorf("tofu fmt would change the rendering:\n%s", got)
			}
			got := run("init", "-no-color", "-input=false")
			for _, bad := range []string{"Unsupported argument", "Missing required argument", "Unsupported block type", "Invalid reference", "Duplicate"} {
				if strings.Contains(got, bad) {
					t.Errorf("tofu init: %s:\n%s\n%s", bad, got, out)
				}
			}
		})
	}
}

// BenchmarkRender renders the s3 template with state encryption: the cost
// the backend gate pays on every governed command to compare backend.tf.
func BenchmarkRender(b *testing.B) {
	v := variants()["s3-aws_kms"]
	tp, _ := TemplateFor(v.Kind, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(v); err != nil {
			b.Fatal(err)
		}
	}
}
