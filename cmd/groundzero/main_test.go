package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/cli"
	"github.com/groundzero/groundzero/internal/pinned"
	"github.com/groundzero/groundzero/internal/s3gateway"
	"github.com/groundzero/groundzero/internal/syslogd"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"groundzero": func() {
			err := cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			if err != nil {
				cli.PrintError(os.Stderr, err)
			}
			os.Exit(cli.ExitCode(err))
		},
	})
}

// TestScripts runs the end-to-end scripts in testdata/script with real git,
// gpg and ssh-keygen.
func TestScripts(t *testing.T) {
	for _, tool := range []string{"git", "gpg", "gpgconf", "ssh-keygen", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps`", tool)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               setup,
		Cmds:                commands,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// setup gives every script a private HOME, GNUPGHOME and git identity, and
// an environment free of cloud and Terraform settings.
func setup(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	// gpg-agent's socket path must be short, so GNUPGHOME lives in /tmp.
	gnupg, err := os.MkdirTemp("", "gzgpg")
	if err != nil {
		return err
	}
	if err := os.Chmod(gnupg, 0o700); err != nil {
		return err
	}
	env.Defer(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		kill.Run()
		os.RemoveAll(gnupg)
	})
	tofu, err := pinned.Path("tofu")
	if err != nil {
		return err
	}
	for k, v := range map[string]string{
		"GROUNDZERO_TF_BINARY": tofu,
		"HOME":                 home,
		"GNUPGHOME":            gnupg,
		"GIT_CONFIG_NOSYSTEM":  "1",
		"GIT_AUTHOR_NAME":      "Test Author",
		"GIT_AUTHOR_EMAIL":     "author@example.test",
		"GIT_COMMITTER_NAME":   "Test Author",
		"GIT_COMMITTER_EMAIL":  "author@example.test",
		"TF_CLI_CONFIG_FILE":   "/dev/null",
		"LC_ALL":               "C",
	} {
		env.Setenv(k, v)
	}
	return os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"), 0o644)
}

var commands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"gpgkey":     cmdGPGKey,
	"gpgrevoke":  cmdGPGRevoke,
	"sshkey":     cmdSSHKey,
	"sha256env":  cmdSHA256Env,
	"flipbyte":   cmdFlipByte,
	"governed":   cmdGoverned,
	"countlines": cmdCountLines,
	"s3gateway":  cmdS3Gateway,
	"s3bucket":   cmdS3Bucket,
	"syslogd":    cmdSyslogd,
	"waitlines":  cmdWaitLines,
	"token":      cmdToken,
	"stdoutenv":  cmdStdoutEnv,
}

// stdoutenv VAR sets $VAR to the last command's standard output, trimmed.
func cmdStdoutEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: stdoutenv VAR")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

// token VAR INTENTFILE ENV sets $VAR to the confirmation token of the intent,
// derived as the README documents: ENV, "-", and the first six hex digits of
// SHA-256(intent id, newline, ENV).
func cmdToken(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: token VAR INTENTFILE ENV")
	}
	id := strings.TrimSuffix(filepath.Base(args[1]), ".json")
	sum := sha256.Sum256([]byte(id + "\n" + args[2]))
	ts.Setenv(args[0], args[2]+"-"+hex.EncodeToString(sum[:])[:6])
}

// s3gateway starts the pinned Versity S3 gateway on 127.0.0.1 for the rest of
// the script and sets $S3_ENDPOINT and the AWS credentials it accepts.
func cmdS3Gateway(ts *testscript.TestScript, neg bool, args []string) {
	g, err := s3gateway.StartIn(filepath.Join(ts.Getenv("WORK"), ".s3gateway"))
	ts.Check(err)
	ts.Defer(g.Stop)
	ts.Setenv("S3_ENDPOINT", g.Endpoint)
	for _, kv := range s3gateway.Env() {
		k, v, _ := strings.Cut(kv, "=")
		ts.Setenv(k, v)
	}
	gateways.Store(ts, g)
}

var gateways sync.Map // *testscript.TestScript → *s3gateway.Gateway

// s3bucket NAME [lock] creates a bucket on the script's gateway, with Object
// Lock when asked.
func cmdS3Bucket(ts *testscript.TestScript, neg bool, args []string) {
	v, _ := gateways.Load(ts)
	g, _ := v.(*s3gateway.Gateway)
	if g == nil || len(args) < 1 {
		ts.Fatalf("usage: s3bucket NAME [lock] (after s3gateway)")
	}
	ts.Check(g.CreateBucket(args[0], len(args) > 1 && args[1] == "lock"))
}

// syslogd starts a real rsyslog for the rest of the script and sets
// $SYSLOG_TCP, $SYSLOG_TLS (client certificate required), $SYSLOG_DIR (with
// ca.pem, client.pem/.key and an untrusted rogue.pem/.key) and $SYSLOG_OUT.
func cmdSyslogd(ts *testscript.TestScript, neg bool, args []string) {
	srv, err := syslogd.StartNew()
	ts.Check(err)
	ts.Defer(srv.Close)
	ts.Setenv("SYSLOG_TCP", srv.TCPAddr)
	ts.Setenv("SYSLOG_TLS", srv.TLSAddr)
	ts.Setenv("SYSLOG_DIR", srv.Dir)
	ts.Setenv("SYSLOG_OUT", srv.Out)
}

// waitlines FILE N waits up to 10s for FILE to have at least N lines.
func cmdWaitLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitlines FILE N")
	}
	var want int
	fmt.Sscan(args[1], &want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		if n := bytes.Count(data, []byte("\n")); n >= want || time.Now().After(deadline) {
			if n < want {
				ts.Fatalf("%s has %d lines after 10s, want %d", args[0], n, want)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runTool(ts *testscript.TestScript, stdin []byte, name string, args ...string) string {
	cmd := exec.Command(lookPath(ts, name), args...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = envOf(ts)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		ts.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// lookPath finds a program on the script's PATH, where testscript puts the
// groundzero command.
func lookPath(ts *testscript.TestScript, name string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

func envOf(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "GNUPGHOME", "TMPDIR", "LC_ALL", "GIT_CONFIG_NOSYSTEM",
		"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "TF_CLI_CONFIG_FILE", "GROUNDZERO_TF_BINARY"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	// The S3 gateway's credentials, once the script started one.
	for _, kv := range s3gateway.Env() {
		k, _, _ := strings.Cut(kv, "=")
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Keys live in $WORK/keys whatever the current directory.

// gpgkey NAME [-expire 1d] [-faketime 20200101T000000] [-algo rsa2048]
// creates an OpenPGP key for NAME <NAME@example.test>, writes its public key
// to $WORK/keys/NAME.asc and sets $FPR_NAME to its fingerprint.
func cmdGPGKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: gpgkey NAME [-expire E] [-faketime T] [-algo A]")
	}
	name := args[0]
	expire, algo, fake := "never", "ed25519", ""
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-expire":
			expire = args[i+1]
		case "-algo":
			algo = args[i+1]
		case "-faketime":
			fake = args[i+1]
		default:
			ts.Fatalf("gpgkey: unknown option %s", args[i])
		}
	}
	base := []string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	gen := append([]string{}, base...)
	if fake != "" {
		gen = append(gen, "--faked-system-time", fake+"!", "--ignore-time-conflict")
	}
	uid := fmt.Sprintf("%s <%s@example.test>", name, name)
	gen = append(gen, "--quick-gen-key", uid, algo, "sign", expire)
	runTool(ts, nil, "gpg", gen...)
	out := runTool(ts, nil, "gpg", append(base, "--with-colons", "--fingerprint", "="+uid)...)
	fpr := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		ts.Fatalf("gpgkey: no fingerprint for %s", name)
	}
	exportKey(ts, name, fpr)
	ts.Setenv("FPR_"+name, fpr)
}

func exportKey(ts *testscript.TestScript, name, fpr string) {
	pub := runTool(ts, nil, "gpg", "--batch", "--armor", "--export", fpr)
	dir := filepath.Join(ts.Getenv("WORK"), "keys")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".asc"), []byte(pub), 0o644); err != nil {
		ts.Fatalf("%v", err)
	}
}

// gpgrevoke NAME writes $WORK/keys/NAME.asc as NAME's key with its
// revocation certificate applied, made in a scratch keyring: the script's
// own keyring keeps the unrevoked secret key, so it can still sign, as a
// thief holding a stolen key could.
func cmdGPGRevoke(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gpgrevoke NAME")
	}
	fpr := ts.Getenv("FPR_" + args[0])
	rev, err := os.ReadFile(filepath.Join(ts.Getenv("GNUPGHOME"), "openpgp-revocs.d", fpr+".rev"))
	ts.Check(err)
	rev = bytes.Replace(rev, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), 1)
	pub := runTool(ts, nil, "gpg", "--batch", "--armor", "--export", fpr)
	scratch, err := os.MkdirTemp("", "gzrev")
	ts.Check(err)
	os.Chmod(scratch, 0o700)
	defer func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+scratch)
		kill.Run()
		os.RemoveAll(scratch)
	}()
	home := []string{"--homedir", scratch, "--batch"}
	runTool(ts, []byte(pub), "gpg", append(home, "--import")...)
	runTool(ts, rev, "gpg", append(home, "--import")...)
	out := runTool(ts, nil, "gpg", append(home, "--armor", "--export", fpr)...)
	ts.Check(os.WriteFile(filepath.Join(ts.Getenv("WORK"), "keys", args[0]+".asc"), []byte(out), 0o644))
}

// sshkey NAME [TYPE [BITS]] creates $WORK/keys/NAME and NAME.pub.
func cmdSSHKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: sshkey NAME [TYPE [BITS]]")
	}
	typ := "ed25519"
	if len(args) > 1 {
		typ = args[1]
	}
	dir := filepath.Join(ts.Getenv("WORK"), "keys")
	os.MkdirAll(dir, 0o755)
	kargs := []string{"-q", "-t", typ, "-N", "", "-C", args[0] + "@example.test", "-f", filepath.Join(dir, args[0])}
	if len(args) > 2 {
		kargs = append(kargs, "-b", args[2])
	}
	runTool(ts, nil, "ssh-keygen", kargs...)
}

// sha256env VAR FILE sets $VAR to the hex SHA-256 of FILE.
func cmdSHA256Env(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sha256env VAR FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	sum := sha256.Sum256(data)
	ts.Setenv(args[0], hex.EncodeToString(sum[:]))
}

// flipbyte FILE OFFSET flips the lowest bit of one byte (a negative OFFSET
// counts from the end).
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	var off int
	fmt.Sscan(args[1], &off)
	if off < 0 {
		off += len(data)
	}
	data[off] ^= 1
	ts.Check(os.WriteFile(p, data, 0o644))
}

// countlines FILE N asserts that FILE has N lines.
func cmdCountLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: countlines FILE N")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fmt.Sprint(bytes.Count(data, []byte("\n")))
	if (got == args[1]) == neg {
		ts.Fatalf("%s has %s lines, want %s%s", args[0], got, map[bool]string{true: "not ", false: ""}[neg], args[1])
	}
}

// governed DIR [EVIDENCE] builds the standard governed repository used by
// many scripts: a git repo in DIR with signers alice (security, release,
// approver) and bob (security, approver), both OpenPGP; the registry signed
// by both; the manifest updated and signed by alice; committed and tagged v1
// by alice. With EVIDENCE (an s3:// URL) the trail lives there from the
// start and the environment is not demo-grade; without it the trail is
// local and the environment demo-grade. It sets $V1 to the registry's
// SHA-256 (the trust root).
func cmdGoverned(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: governed DIR [EVIDENCE]")
	}
	dir := ts.MkAbs(args[0])
	os.MkdirAll(dir, 0o755)
	for _, n := range []string{"alice", "bob"} {
		if ts.Getenv("FPR_"+n) == "" {
			cmdGPGKey(ts, false, []string{n})
		}
	}
	gz := func(a ...string) { runTool(ts, nil, "groundzero", append([]string{"-C", dir}, a...)...) }
	git := func(a ...string) { runTool(ts, nil, "git", append([]string{"-C", dir}, a...)...) }
	git("init", "-q")
	if len(args) == 2 {
		gz("init", "--evidence", args[1])
	} else {
		gz("init")
	}
	gz("signers", "add", "--id", "alice", "--role", "security,release,approver", "--key", filepath.Join(ts.Getenv("WORK"), "keys/alice.asc"))
	gz("signers", "add", "--id", "bob", "--role", "security,approver", "--key", filepath.Join(ts.Getenv("WORK"), "keys/bob.asc"))
	gz("signers", "sign", "--key", "gpg:"+ts.Getenv("FPR_alice"))
	gz("signers", "sign", "--key", "gpg:"+ts.Getenv("FPR_bob"))
	gz("manifest", "update")
	gz("manifest", "sign", "--key", "gpg:"+ts.Getenv("FPR_alice"))
	git("add", "-A")
	git("commit", "-q", "-m", "governed repository")
	git("tag", "-s", "-u", ts.Getenv("FPR_alice"), "-m", "release v1", "v1")
	cmdSHA256Env(ts, false, []string{"V1", filepath.Join(args[0], "governance/signers.yaml")})
}
