package gittag_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/gittag"
	"github.com/groundzero/groundzero/internal/signature"
	"github.com/groundzero/groundzero/internal/sshsig"
)

const (
	commit1   = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	commit256 = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
	tagger    = "Alice Example <alice@example.test> 1767225600 +0100"
)

func header(object string) string {
	return "object " + object + "\ntype commit\ntag v1.0.0\ntagger " + tagger + "\n"
}

var (
	payload = header(commit1) + "\nRelease v1.0.0\n\nSecond paragraph.\n"

	pgpBlock = "-----BEGIN PGP SIGNATURE-----\n\niHUEABYKAB0WIQQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n=abcd\n-----END PGP SIGNATURE-----\n"
	sshBlock = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAg\n-----END SSH SIGNATURE-----\n"

	unsigned  = payload
	pgpSigned = payload + pgpBlock
	sshSigned = payload + sshBlock
)

func mustParse(t *testing.T, raw string) *gittag.Tag {
	t.Helper()
	tag, err := gittag.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse(%q) = %v, want nil error", raw, err)
	}
	return tag
}

func TestParseUnsigned(t *testing.T) {
	tag := mustParse(t, unsigned)
	if tag.Object != commit1 || tag.Type != "commit" || tag.Name != "v1.0.0" || tag.Tagger != tagger {
		t.Errorf("Parse(unsigned) = %+v, want object %s, type commit, tag v1.0.0, tagger %q", tag, commit1, tagger)
	}
	if want := time.Unix(1767225600, 0).UTC(); !tag.TaggerTime.Equal(want) {
		t.Errorf("Parse(unsigned).TaggerTime = %v, want %v", tag.TaggerTime, want)
	}
	if string(tag.Payload) != unsigned || tag.Signature != nil || tag.Scheme != 0 {
		t.Errorf("Parse(unsigned) = payload %q, signature %q, scheme %v, want the whole object and no signature", tag.Payload, tag.Signature, tag.Scheme)
	}
	var fe *gittag.FormatError
	if _, err := tag.Signatures(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("Parse(unsigned).Signatures() = %v, want *FormatError not signed", err)
	}
}

func TestParseSigned(t *testing.T) {
	for _, tc := range []struct {
		name, raw, block string
		scheme           signature.Scheme
	}{
		{"pgp", pgpSigned, pgpBlock, signature.OpenPGP},
		{"ssh", sshSigned, sshBlock, signature.SSH},
		{"sha256 object", header(commit256) + "\nmsg\n" + pgpBlock, pgpBlock, signature.OpenPGP},
		{"no message", header(commit1) + "\n" + sshBlock, sshBlock, signature.SSH},
		{"no final newline", payload + strings.TrimSuffix(pgpBlock, "\n"), strings.TrimSuffix(pgpBlock, "\n"), signature.OpenPGP},
		{"CRLF block", payload + strings.ReplaceAll(pgpBlock, "\n", "\r\n"), strings.ReplaceAll(pgpBlock, "\n", "\r\n"), signature.OpenPGP},
	} {
		tag, err := gittag.Parse([]byte(tc.raw))
		if err != nil {
			t.Errorf("Parse(%s) = %v, want nil error", tc.name, err)
			continue
		}
		wantPayload := strings.TrimSuffix(tc.raw, tc.block)
		if string(tag.Payload) != wantPayload {
			t.Errorf("Parse(%s).Payload = %q, want %q (every byte before the signature line)", tc.name, tag.Payload, wantPayload)
		}
		if string(tag.Signature) != tc.block {
			t.Errorf("Parse(%s).Signature = %q, want %q", tc.name, tag.Signature, tc.block)
		}
		if tag.Scheme != tc.scheme {
			t.Errorf("Parse(%s).Scheme = %v, want %v", tc.name, tag.Scheme, tc.scheme)
		}
	}
	if tag := mustParse(t, header(commit256)+"\nmsg\n"); tag.Object != commit256 {
		t.Errorf("Parse(sha256 object).Object = %q, want %q", tag.Object, commit256)
	}
}

// A signature-looking line that is not at the start of a line is part of the
// message.
func TestParseMarkerMidLine(t *testing.T) {
	raw := header(commit1) + "\nsee  -----BEGIN PGP SIGNATURE----- below\n"
	tag := mustParse(t, raw)
	if tag.Signature != nil || string(tag.Payload) != raw {
		t.Errorf("Parse(marker mid-line) = signature %q, want unsigned", tag.Signature)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, raw, msg string
	}{
		{"two PGP blocks", payload + pgpBlock + pgpBlock, "more than one"},
		{"two SSH blocks", payload + sshBlock + sshBlock, "more than one"},
		{"PGP then SSH", payload + pgpBlock + sshBlock, "more than one"},
		{"SSH then PGP", payload + sshBlock + pgpBlock, "more than one"},
		{"marker in message", header(commit1) + "\n-----BEGIN PGP SIGNATURE-----\nnot really\n\n" + pgpBlock, "more than one"},
		{"gpgsig header", header(commit1) + "gpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END PGP SIGNATURE-----\n\nmsg\n", "gpgsig"},
		{"gpgsig-sha256 header", header(commit1) + "gpgsig-sha256 x\n\nmsg\n", "gpgsig-sha256"},
		{"gpgsig first", "gpgsig x\n" + header(commit1) + "\nmsg\n", "gpgsig"},
		{"unknown header", header(commit1) + "encoding UTF-8\n\nmsg\n", "unexpected header"},
		{"headers out of order", "type commit\nobject " + commit1 + "\ntag v1\ntagger " + tagger + "\n\nmsg\n", "unexpected header"},
		{"missing tagger", "object " + commit1 + "\ntype commit\ntag v1\n\nmsg\n", "missing"},
		{"missing tag", "object " + commit1 + "\ntype commit\n\nmsg\n", "missing"},
		{"empty tag name", "object " + commit1 + "\ntype commit\ntag \ntagger " + tagger + "\n\nmsg\n", "missing"},
		{"empty", "", "header"},
		{"only message", "\nmsg\n", "header"},
		{"PGP MESSAGE", payload + "-----BEGIN PGP MESSAGE-----\nxx\n-----END PGP MESSAGE-----\n", "not supported"},
		{"x509", payload + "-----BEGIN SIGNED MESSAGE-----\nxx\n-----END SIGNED MESSAGE-----\n", "not supported"},
		{"bad object id short", strings.Replace(payload, commit1, commit1[:39], 1), "bad object id"},
		{"bad object id upper", strings.Replace(payload, commit1, strings.ToUpper(commit1), 1), "bad object id"},
		{"bad object id non-hex", strings.Replace(payload, commit1, "g"+commit1[1:], 1), "bad object id"},
		{"bad object id 41", strings.Replace(payload, commit1, commit1+"0", 1), "bad object id"},
		{"bad object id empty", strings.Replace(payload, "object "+commit1, "object", 1), "bad object id"},
		{"bad object id spaces", strings.Replace(payload, commit1, " "+commit1[1:], 1), "bad object id"},
	} {
		tag, err := gittag.Parse([]byte(tc.raw))
		var fe *gittag.FormatError
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%s) = %+v, %v, want *FormatError", tc.name, tag, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Parse(%s) = %v, want mention of %q", tc.name, err, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "tag object: ") {
			t.Errorf("Parse(%s).Error() = %q, want prefix \"tag object: \"", tc.name, err)
		}
	}
}

func TestParseMaxSize(t *testing.T) {
	raw := payload + strings.Repeat("x", gittag.MaxSize)
	var fe *gittag.FormatError
	if _, err := gittag.Parse([]byte(raw)); !errors.As(err, &fe) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse(%d bytes) = %v, want *FormatError about size", len(raw), err)
	}
}

// The error for an unexpected header does not echo a long line in full.
func TestParseTruncatesEcho(t *testing.T) {
	long := strings.Repeat("z", 500)
	_, err := gittag.Parse([]byte(header(commit1) + "extra " + long + "\n\nmsg\n"))
	if err == nil || strings.Contains(err.Error(), long[:100]) {
		t.Errorf("Parse(long unknown header) = %v, want an error that does not echo the whole line", err)
	}
}

func git(t *testing.T, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C")
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New(strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func gitInit(t *testing.T, format string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	if _, err := git(t, dir, nil, "init", "-q", "--object-format="+format); err != nil {
		t.Fatalf("git init --object-format=%s: %v", format, err)
	}
	return dir
}

// hashObject asks git for the id of a tag object. git checks that the object
// is a well-formed tag unless literally is set.
func hashObject(t *testing.T, dir string, raw []byte, literally bool) string {
	t.Helper()
	args := []string{"hash-object", "-t", "tag", "--stdin"}
	if literally {
		args = append(args, "--literally")
	}
	id, err := git(t, dir, raw, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return id
}

func TestObjectIDMatchesGit(t *testing.T) {
	dir1 := gitInit(t, "sha1")
	for name, raw := range map[string]string{
		"unsigned": unsigned,
		"pgp":      pgpSigned,
		"ssh":      sshSigned,
		"empty":    "", // not a valid tag: hashed with --literally
	} {
		got := gittag.ObjectID([]byte(raw), false)
		if want := hashObject(t, dir1, []byte(raw), raw == ""); got != want {
			t.Errorf("ObjectID(%s, sha1) = %s, want %s (git hash-object)", name, got, want)
		}
		if len(got) != 40 {
			t.Errorf("len(ObjectID(%s, sha1)) = %d, want 40", name, len(got))
		}
	}

	dir256 := gitInit(t, "sha256")
	raw := header(commit256) + "\nRelease\n" + pgpBlock
	got := gittag.ObjectID([]byte(raw), true)
	if want := hashObject(t, dir256, []byte(raw), false); got != want {
		t.Errorf("ObjectID(sha256 tag, sha256) = %s, want %s (git hash-object)", got, want)
	}
	if len(got) != 64 {
		t.Errorf("len(ObjectID(sha256 tag, sha256)) = %d, want 64", len(got))
	}
}

// A tag signed in process with SSH, stored by `git mktag` and checked by `git
// verify-tag`: git's idea of the signed payload is Parse's.
func TestParseAgreesWithGitVerifyTag(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	dir := gitInit(t, "sha1")
	commitID, err := git(t, dir, nil, "-c", "user.name=A", "-c", "user.email=a@example.test", "commit", "-q", "--allow-empty", "-m", "init")
	if err != nil {
		t.Fatal(err)
	}
	if commitID, err = git(t, dir, nil, "rev-parse", "HEAD"); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	body := header(commitID) + "\nRelease v1.0.0\n"
	sig, err := sshsig.Sign(signer, strings.NewReader(body), gittag.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(body + string(sshsig.Armor(sig.Marshal())))

	id, err := git(t, dir, raw, "mktag")
	if err != nil {
		t.Fatalf("git mktag: %v", err)
	}
	if got := gittag.ObjectID(raw, false); got != id {
		t.Errorf("ObjectID(signed tag) = %s, want %s (git mktag)", got, id)
	}
	if _, err := git(t, dir, nil, "update-ref", "refs/tags/v1.0.0", id); err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	line := "alice@example.test namespaces=\"git\" " + string(ssh.MarshalAuthorizedKey(sshPub))
	if err := os.WriteFile(allowed, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := git(t, dir, nil, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-tag", "v1.0.0"); err != nil {
		t.Fatalf("git verify-tag: %v %s", err, out)
	}
	stored, err := git(t, dir, nil, "cat-file", "tag", id)
	if err != nil {
		t.Fatal(err)
	}
	if stored+"\n" != string(raw) {
		t.Fatalf("git cat-file tag = %q, want %q", stored, raw)
	}

	tag, err := gittag.Parse(raw)
	if err != nil {
		t.Fatalf("Parse(git tag) = %v", err)
	}
	if string(tag.Payload) != body || tag.Scheme != signature.SSH {
		t.Fatalf("Parse(git tag) = payload %q, scheme %v, want %q, ssh", tag.Payload, tag.Scheme, body)
	}
	sigs, err := tag.Signatures()
	if err != nil || len(sigs) != 1 {
		t.Fatalf("Signatures() = %v, %v, want one signature", sigs, err)
	}
	k, err := signature.ParsePublicKey(ssh.MarshalAuthorizedKey(sshPub))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(tag.Payload, sigs[0], gittag.Namespace, time.Now()); err != nil {
		t.Errorf("Verify(Payload) = %v, want nil error", err)
	}
	if err := k.Verify(raw, sigs[0], gittag.Namespace, time.Now()); err == nil {
		t.Error("Verify(whole object) = nil, want an error: the signature covers only the payload")
	}
}

func TestSignaturesMalformed(t *testing.T) {
	tag := mustParse(t, pgpSigned)
	var fe *gittag.FormatError
	if _, err := tag.Signatures(); !errors.As(err, &fe) {
		t.Errorf("Signatures(junk PGP block) = %v, want *FormatError", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		unsigned, pgpSigned, sshSigned,
		payload + pgpBlock + pgpBlock,
		payload + pgpBlock + sshBlock,
		header(commit1) + "gpgsig x\n\nmsg\n",
		header(commit1) + "encoding x\n\nmsg\n",
		payload + "-----BEGIN PGP MESSAGE-----\nxx\n-----END PGP MESSAGE-----\n",
		strings.Replace(payload, commit1, commit1[:39], 1),
		header(commit256) + "\n" + sshBlock,
		header(commit1),
		"",
		"\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tag, err := gittag.Parse(raw)
		if err != nil {
			var fe *gittag.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error = %T %v, want *FormatError", raw, err, err)
			}
			return
		}
		if !bytes.HasPrefix(raw, tag.Payload) {
			t.Fatalf("Parse(%q).Payload = %q, not a prefix of the object", raw, tag.Payload)
		}
		if got := append(append([]byte(nil), tag.Payload...), tag.Signature...); !bytes.Equal(got, raw) {
			t.Fatalf("Parse(%q): Payload+Signature = %q, want the object", raw, got)
		}
		if (tag.Signature == nil) != (tag.Scheme == 0) {
			t.Fatalf("Parse(%q) = signature %q with scheme %v", raw, tag.Signature, tag.Scheme)
		}
		if tag.Object == "" || tag.Type == "" || tag.Name == "" || tag.Tagger == "" {
			t.Fatalf("Parse(%q) = %+v, missing a header", raw, tag)
		}
		if tag.Signature != nil {
			// The signature starts a line after the headers, and is the
			// only signature-looking line there.
			if len(tag.Payload) == 0 || tag.Payload[len(tag.Payload)-1] != '\n' {
				t.Fatalf("Parse(%q): signature does not start a line", raw)
			}
			for _, m := range []string{"-----BEGIN PGP SIGNATURE-----", "-----BEGIN SSH SIGNATURE-----", "-----BEGIN PGP MESSAGE-----", "-----BEGIN SIGNED MESSAGE-----"} {
				if bytes.Contains(tag.Payload, []byte("\n"+m)) {
					t.Fatalf("Parse(%q): payload holds a second signature marker %s", raw, m)
				}
			}
		}
	})
}
