package backend

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// TestStateEncryptionOnTheGateway runs the pinned OpenTofu against the S3
// gateway with the pbkdf2 rendering: unencrypted local state moves into the
// bucket through the transitional form, the enforced form then reads it,
// and what lies in the bucket is ciphertext.
func TestStateEncryptionOnTheGateway(t *testing.T) {
	tofu, err := pinned.Path("tofu")
	if err != nil {
		t.Fatal(err)
	}
	s3gateway.UseEnv(t)
	g := s3gateway.Start(t)
	g.Bucket(t, "tfstate", false)
	dir := t.TempDir()
	v := Values{Kind: KindMinIO, Bucket: "tfstate", StateKey: "org/dev/terraform.tfstate", Region: "us-east-1", Endpoint: g.Endpoint,
		Lock: LockFile, KeyProvider: KeyPBKDF2, Encrypt: true}
	tp := templateFor(t, v, false)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TF_CLI_CONFIG_FILE=/dev/null", "TF_DATA_DIR=" + filepath.Join(dir, "data"),
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1", "TF_VAR_" + PassphraseVar + "=correct-horse-battery-staple"}, s3gateway.Env()...)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tofu, append(args, "-no-color")...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tofu %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	write("main.tf", `resource "terraform_data" "secret_holder" { input = "visible-only-in-plaintext" }`+"\n")
	run("init", "-input=false")
	run("apply", "-auto-approve", "-input=false")
	if b, _ := os.ReadFile(filepath.Join(dir, "terraform.tfstate")); !bytes.Contains(b, []byte("visible-only-in-plaintext")) {
		t.Fatal("the local bootstrap state is not plain, as the migration expects")
	}
	mig := v
	mig.Migrate = true
	out, err := tp.Render(mig)
	if err != nil {
		t.Fatal(err)
	}
	write("backend.tf", string(out))
	run("init", "-input=false", "-migrate-state", "-force-copy")
	os.Remove(filepath.Join(dir, "terraform.tfstate"))
	final, err := tp.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	write("backend.tf", string(final))
	run("init", "-input=false", "-reconfigure")
	if got := run("plan", "-input=false", "-detailed-exitcode"); !strings.Contains(got, "No changes") {
		t.Fatalf("the enforced configuration does not read the migrated state:\n%s", got)
	}
	obj, err := g.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("tfstate"), Key: aws.String("org/dev/terraform.tfstate")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if bytes.Contains(body, []byte("visible-only-in-plaintext")) || !bytes.Contains(body, []byte("encrypted_data")) {
		t.Fatalf("the state in the bucket is not encrypted:\n%.300s", body)
	}
}
