// Package gittag reads annotated git tag objects and checks their signatures
// in pure Go, without `git verify-tag`.
//
// A signed tag object is
//
//	object <commit id>
//	type commit
//	tag <name>
//	tagger <ident> <unix time> <tz>
//
//	<message>
//	-----BEGIN PGP SIGNATURE-----      (or -----BEGIN SSH SIGNATURE-----)
//	...
//	-----END PGP SIGNATURE-----
//
// and the signature covers every byte before its first line. Git itself takes
// the last signature-looking line as the start of the signature; a tag with
// more than one such line, or with signature headers (gpgsig, gpgsig-sha256),
// is ambiguous and refused (T20). OpenPGP signatures are checked as detached
// signatures over the payload; SSH signatures in the "git" namespace.
//
// Governed finds the commit that intents and the tag gate are bound to: HEAD,
// less the commits on its first-parent line that only add or change signed
// records (governance/intents, governance/revocations). Approvals can then
// travel through git, committed beside what they approve.
package gittag

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/signature"
)

// MaxSize bounds a tag object.
const MaxSize = 1 << 20

// Namespace is the SSH signature namespace git uses for tags and commits.
const Namespace = "git"

// Tag is a parsed annotated tag object.
type Tag struct {
	Object     string
	Type       string
	Name       string
	Tagger     string
	TaggerTime time.Time // as the tagger claims it; never used to judge validity
	Payload    []byte    // the signed bytes
	Signature  []byte    // the armored signature block, nil when unsigned
	Scheme     signature.Scheme
}

// FormatError reports a malformed or ambiguous tag object.
type FormatError struct{ Msg string }

func (e *FormatError) Error() string { return "tag object: " + e.Msg }

var sigMarkers = []struct {
	prefix string
	scheme signature.Scheme
}{
	{"-----BEGIN PGP SIGNATURE-----", signature.OpenPGP},
	{"-----BEGIN SSH SIGNATURE-----", signature.SSH},
	{"-----BEGIN PGP MESSAGE-----", 0},
	{"-----BEGIN SIGNED MESSAGE-----", 0},
}

// Parse reads a tag object's bytes, as `git cat-file tag` prints them.
func Parse(raw []byte) (*Tag, error) {
	if len(raw) > MaxSize {
		return nil, &FormatError{fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		// A tag with an empty message has no blank line only if the
		// object ends right after the headers.
		head, body = bytes.TrimSuffix(raw, []byte("\n")), nil
	}
	t := &Tag{}
	want := []string{"object", "type", "tag", "tagger"}
	for i, line := range strings.Split(string(head), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "gpgsig", "gpgsig-sha256":
			return nil, &FormatError{"carries a " + key + " header; signature headers on tags are refused as ambiguous"}
		}
		if i >= len(want) || key != want[i] {
			return nil, &FormatError{fmt.Sprintf("unexpected header line %q", truncate(line))}
		}
		switch key {
		case "object":
			if (len(val) != 40 && len(val) != 64) || strings.Trim(val, "0123456789abcdef") != "" {
				return nil, &FormatError{"bad object id"}
			}
			t.Object = val
		case "type":
			t.Type = val
		case "tag":
			t.Name = val
		case "tagger":
			t.Tagger = val
			fields := strings.Fields(val)
			if len(fields) >= 2 {
				if sec, err := strconv.ParseInt(fields[len(fields)-2], 10, 64); err == nil {
					t.TaggerTime = time.Unix(sec, 0).UTC()
				}
			}
		}
	}
	if t.Object == "" || t.Type == "" || t.Name == "" || t.Tagger == "" {
		return nil, &FormatError{"missing object, type, tag or tagger header"}
	}
	bodyStart := len(raw) - len(body)
	sigStart := -1
	off := bodyStart
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		for _, m := range sigMarkers {
			if bytes.HasPrefix(line, []byte(m.prefix)) {
				if sigStart >= 0 {
					return nil, &FormatError{"carries more than one signature block; refused as ambiguous"}
				}
				if m.scheme == 0 {
					return nil, &FormatError{"signature format " + strings.Trim(m.prefix, "-") + " is not supported; sign with OpenPGP or SSH"}
				}
				sigStart = off
				t.Scheme = m.scheme
			}
		}
		off += len(line)
	}
	if sigStart >= 0 {
		t.Payload = raw[:sigStart]
		t.Signature = raw[sigStart:]
	} else {
		t.Payload = raw
	}
	return t, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// ObjectID returns the git object id of a tag object's bytes, SHA-1 or
// SHA-256 by the length of want.
func ObjectID(raw []byte, sha256Repo bool) string {
	hdr := fmt.Sprintf("tag %d\x00", len(raw))
	if sha256Repo {
		h := sha256.New()
		h.Write([]byte(hdr))
		h.Write(raw)
		return hex.EncodeToString(h.Sum(nil))
	}
	h := sha1.New()
	h.Write([]byte(hdr))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))
}

// Signatures parses the tag's signature block; exactly one signature is
// allowed.
func (t *Tag) Signatures() ([]*signature.Signature, error) {
	if t.Signature == nil {
		return nil, &FormatError{"is not signed"}
	}
	sigs, err := signature.Parse(t.Scheme, t.Signature)
	if err != nil {
		return nil, &FormatError{err.Error()}
	}
	if len(sigs) != 1 {
		return nil, &FormatError{fmt.Sprintf("carries %d signatures in its block; exactly one is allowed", len(sigs))}
	}
	return sigs, nil
}

// Ref is a tag found in the repository.
type Ref struct {
	Name string // short tag name, or the REF given
	ID   string // object id of the tag object
	Raw  []byte
	Tag  *Tag
}

// NotAnnotatedError reports a REF that is not an annotated tag.
type NotAnnotatedError struct {
	Ref  string
	Type string
}

func (e *NotAnnotatedError) Error() string {
	return fmt.Sprintf("%s is a %s, not an annotated tag", e.Ref, e.Type)
}

// Read resolves ref to a tag object and parses it, checking that the bytes git
// returned hash to the object id.
func Read(ctx context.Context, r *repo.Repo, ref string) (*Ref, error) {
	out, err := r.Git(ctx, "rev-parse", "--verify", "--end-of-options", ref)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", ref, err)
	}
	id := strings.TrimSpace(string(out))
	typ, err := r.Git(ctx, "cat-file", "-t", id)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(string(typ)); t != "tag" {
		return nil, &NotAnnotatedError{Ref: ref, Type: t}
	}
	raw, err := r.Git(ctx, "cat-file", "tag", id)
	if err != nil {
		return nil, err
	}
	if got := ObjectID(raw, len(id) == 64); got != id {
		return nil, &FormatError{fmt.Sprintf("git returned bytes that hash to %s, not %s", got, id)}
	}
	t, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return &Ref{Name: ref, ID: id, Raw: raw, Tag: t}, nil
}

// AtHead returns the names of all tags that point at HEAD's commit.
func AtHead(ctx context.Context, r *repo.Repo) ([]string, error) { return At(ctx, r, "HEAD") }

// At returns the names of all tags that point at commit.
func At(ctx context.Context, r *repo.Repo, commit string) ([]string, error) {
	out, err := r.Git(ctx, "tag", "--points-at", commit, "--")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			names = append(names, l)
		}
	}
	return names, nil
}

// Head returns HEAD's commit id.
func Head(ctx context.Context, r *repo.Repo) (string, error) {
	out, err := r.Git(ctx, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Dirty lists paths under dirs with uncommitted changes (staged, unstaged or
// untracked), as git reports them.
func Dirty(ctx context.Context, r *repo.Repo, dirs ...string) ([]string, error) {
	args := append([]string{"status", "--porcelain=v1", "-z", "--untracked-files=all", "--"}, dirs...)
	out, err := r.Git(ctx, args...)
	if err != nil {
		return nil, err
	}
	var paths []string
	entries := strings.Split(string(out), "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 4 {
			continue
		}
		paths = append(paths, e[3:])
		if e[0] == 'R' || e[0] == 'C' {
			i++ // the rename source follows
		}
	}
	return paths, nil
}

// MaxRecordsOnly bounds the walk of Governed: the number of commits that
// only change signed records it will step over.
const MaxRecordsOnly = 1000

// WalkError reports a first-parent line with more records-only commits
// after the last governed change than Governed will walk.
type WalkError struct{ Limit int }

func (e *WalkError) Error() string {
	return fmt.Sprintf("HEAD has more than %d commits after the last one that changes governed content, each only changing signed records; commit a governed change (or tag a newer commit) so the walk stays short", e.Limit)
}

// Governed returns the commit whose content intents and the tag gate are
// bound to: the nearest commit C on HEAD's first-parent line (HEAD itself
// included) such that every commit after C on that line changes, against
// its first parent, only paths under repo.RecordDirs (signed intents and
// revocations, which verify by their own signatures). extra is how many such
// commits follow C. Outside the record directories HEAD's tree is then C's,
// so approvals can be committed beside what they approve without moving
// what they approve. A merge commit is judged by the same tree comparison:
// one that brings in anything outside the record directories from another
// parent is a governed change, and what its other parents contain is never
// walked.
func Governed(ctx context.Context, r *repo.Repo) (commit string, extra int, err error) {
	return governed(ctx, r, MaxRecordsOnly)
}

func governed(ctx context.Context, r *repo.Repo, limit int) (string, int, error) {
	out, err := r.Git(ctx, "rev-list", "--first-parent", "--parents", fmt.Sprintf("--max-count=%d", limit+1), "HEAD^{commit}", "--")
	if err != nil {
		return "", 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, line := range lines {
		ids := strings.Fields(line)
		if len(ids) == 0 {
			break
		}
		if len(ids) < 2 {
			return ids[0], i, nil // a root (or a shallow clone's boundary)
		}
		only, err := recordsOnly(ctx, r, ids[1], ids[0])
		if err != nil {
			return "", 0, err
		}
		if !only {
			return ids[0], i, nil
		}
		if i+1 > limit {
			return "", 0, &WalkError{Limit: limit}
		}
	}
	return "", 0, fmt.Errorf("git rev-list HEAD listed no commit")
}

// recordsOnly reports whether every path that differs between parent and
// commit lies under a record directory. Renames are listed as a deletion
// and an addition, so a file moved out of the governed tree counts as a
// governed change.
func recordsOnly(ctx context.Context, r *repo.Repo, parent, commit string) (bool, error) {
	out, err := r.Git(ctx, "diff-tree", "-r", "-z", "--name-only", "--no-renames", "--no-commit-id", parent, commit, "--")
	if err != nil {
		return false, err
	}
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" && !IsRecord(p) {
			return false, nil
		}
	}
	return true, nil
}

// IsRecord reports whether a repository path lies under one of
// repo.RecordDirs.
func IsRecord(p string) bool {
	for _, d := range repo.RecordDirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
