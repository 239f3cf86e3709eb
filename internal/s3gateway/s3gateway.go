// Package s3gateway runs the pinned Versity S3 gateway on 127.0.0.1 for
// tests: a real S3-compatible server (conditional writes, Object Lock) in a
// temporary directory, stopped when the test ends.
package s3gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/groundzero/groundzero/internal/pinned"
)

// Test credentials; they protect nothing.
const (
	AccessKey = "groundzero-test"
	SecretKey = "groundzero-test-secret"
)

// Gateway is a running gateway.
type Gateway struct {
	Endpoint string // http://127.0.0.1:PORT
	// Access and Secret are the root account's key: AccessKey and
	// SecretKey, or a fresh key for a gateway with its own IAM.
	Access, Secret string
	bin            string
	cmd            *exec.Cmd
}

// Options say how a gateway runs.
type Options struct {
	// IAM gives the gateway its own accounts, kept under its directory
	// (Admin manages them), and a fresh root key.
	IAM bool
}

// Start runs a gateway for the test, or fails it with a hint.
func Start(t testing.TB) *Gateway {
	t.Helper()
	g, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g
}

// StartIn runs a gateway whose data lives in dir; the caller stops it.
func StartIn(dir string) (*Gateway, error) { return StartWith(dir, Options{}) }

// StartWith runs a gateway whose data lives in dir, as opt says; the caller
// stops it.
func StartWith(dir string, opt Options) (*Gateway, error) {
	bin, err := pinned.Path("versitygw")
	if err != nil {
		return nil, err
	}
	data, versions := filepath.Join(dir, "data"), filepath.Join(dir, "versions")
	dirs := []string{data, versions}
	g := &Gateway{Access: AccessKey, Secret: SecretKey, bin: bin}
	var iam []string
	if opt.IAM {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		g.Access, g.Secret = "gzroot", "gzroot-secret-"+hex.EncodeToString(b)
		dirs = append(dirs, filepath.Join(dir, "iam"))
		iam = []string{"--iam-dir", filepath.Join(dir, "iam")}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"--port", addr, "--access", g.Access, "--secret", g.Secret}, iam...)
	cmd := exec.Command(bin, append(args, "posix", "--versioning-dir", versions, data)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	// The gateway dies with the process that started it, even one killed
	// before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g.Endpoint, g.cmd = "http://"+addr, cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return g, nil
		}
		if time.Now().After(deadline) {
			g.Stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("versitygw did not start on %s: %s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the gateway.
func (g *Gateway) Stop() {
	if g.cmd.Process != nil {
		g.cmd.Process.Kill()
		g.cmd.Wait()
	}
}

// Client returns an S3 client for the gateway, with the root key.
func (g *Gateway) Client() *s3.Client { return g.ClientAs(g.Access, g.Secret) }

// ClientAs returns an S3 client for the gateway with the given key.
func (g *Gateway) ClientAs(access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(g.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Admin runs `versitygw admin ARGS` against a gateway with its own IAM,
// as the root account: "create-user -a KEY -s SECRET -r user", say.
func (g *Gateway) Admin(args ...string) error {
	cmd := exec.Command(g.bin, append([]string{"admin", "-a", g.Access, "-s", g.Secret, "--er", g.Endpoint}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("versitygw admin %s: %v: %s", args[0], err, out)
	}
	return nil
}

// Bucket creates a bucket, with Object Lock when lock is set.
func (g *Gateway) Bucket(t testing.TB, name string, lock bool) {
	t.Helper()
	if err := g.CreateBucket(name, lock); err != nil {
		t.Fatal(err)
	}
}

// CreateBucket creates a bucket, with Object Lock when lock is set.
func (g *Gateway) CreateBucket(name string, lock bool) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := g.Client().CreateBucket(context.Background(), in); err != nil {
		return fmt.Errorf("create bucket %s: %v", name, err)
	}
	return nil
}

// URL returns an s3:// store URL for bucket/prefix on this gateway.
func (g *Gateway) URL(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&path_style=true", bucket, prefix, g.Endpoint)
}

// UseEnv gives the test process the gateway's credentials (Env) and no other
// AWS setting, for the rest of the test.
func UseEnv(t testing.TB) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Env returns the environment a groundzero process needs to reach the
// gateway, with no other AWS settings.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
}
