// Package trail keeps groundzero's audit trail (package audit defines its
// format) in an evidence store, appends to it, closes commands with signed
// checkpoints, and verifies it against the signers registry.
//
// A store is a local directory (file://DIR) or an object-store prefix
// (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX). Appends are compare-and-swap: an append names the seq
// it expects to write and fails with ErrConflict when another writer got
// there first, and the caller re-reads and retries.
package trail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrConflict reports that the expected seq was taken by another writer.
var ErrConflict = errors.New("another writer appended first")

// TornError reports a local trail whose last line was not completed.
type TornError struct {
	Store string
	Bytes int64
}

func (e *TornError) Error() string {
	return fmt.Sprintf("%s: the audit trail ends with %d bytes of an interrupted append (a torn tail)", e.Store, e.Bytes)
}

// StoredCheckpoint is a checkpoint body and its signature files as stored.
type StoredCheckpoint struct {
	Name string            // store-relative name, for messages
	Body []byte            // checkpoint body
	Sigs map[string][]byte // ".asc" and/or ".sig" contents
}

// StoredState is a state bundle as stored.
type StoredState struct {
	Name string // store-relative name, for messages and paging
	Size int64  // the trail size its name claims (a hint: the bundle decides)
	Data []byte
}

// MaxStateSize bounds one state bundle.
const MaxStateSize = 16 << 20

// stateObject names a state bundle so that names sort largest size first:
// the size is stored as its distance below the largest int64.
func stateObject(size int64, data []byte) string {
	h := sha256.Sum256(data)
	return fmt.Sprintf("%020d-%s.json", math.MaxInt64-size, hex.EncodeToString(h[:8]))
}

// stateSize reads the size back from a state bundle's name.
func stateSize(name string) (int64, bool) {
	if len(name) != 20+1+16+5 || name[20] != '-' || !strings.HasSuffix(name, ".json") {
		return 0, false
	}
	inv, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || inv < 0 {
		return 0, false
	}
	return math.MaxInt64 - inv, true
}

// Store holds one audit trail.
type Store interface {
	// URL names the store.
	URL() string
	// Head returns the number of entries and the bytes of the last one
	// (nil when empty).
	Head(ctx context.Context) (n int64, last []byte, err error)
	// Append writes lines as entries first, first+1, … only if the trail
	// has exactly first entries whose last is prevLast (nil when first is
	// 0). It returns how many lines it wrote; when another writer got
	// there first it stops and returns ErrConflict (a local store writes
	// all lines or none).
	Append(ctx context.Context, first int64, prevLast []byte, lines [][]byte) (int, error)
	// Entries streams every entry line, each ended by "\n", from seq 0.
	Entries(ctx context.Context) (io.ReadCloser, error)
	// EntriesFrom streams the entry lines from seq first on, as Entries
	// does. Its cost grows with the entries after first, not before.
	EntriesFrom(ctx context.Context, first int64) (io.ReadCloser, error)
	// Entry reads the line of entry seq (without its newline), or returns
	// an *EntryMissingError. On object storage it reads the object's
	// current version, with no listing and no check of older versions.
	Entry(ctx context.Context, seq int64) ([]byte, error)
	// PutCheckpoint stores a checkpoint of the given size and its
	// signature files. Storing the same checkpoint again is not an error.
	PutCheckpoint(ctx context.Context, size int64, body []byte, sigs map[string][]byte) error
	// Checkpoints lists every stored checkpoint.
	Checkpoints(ctx context.Context) ([]StoredCheckpoint, error)
	// PutState stores a checkpoint's state bundle (the checkpoint, its
	// signatures and the signed summary of the trail up to it) for a trail
	// of size entries. Storing the same bundle again is not an error.
	PutState(ctx context.Context, size int64, data []byte) error
	// States lists stored state bundles, largest size first, at most limit
	// of them, starting after the one named after ("" for the largest).
	// Its cost does not grow with the number stored.
	States(ctx context.Context, after string, limit int) ([]StoredState, error)
	// PutArtifact stores a piece of evidence (an apply log, say) under a
	// name, once: an existing artifact is never replaced.
	PutArtifact(ctx context.Context, name string, data []byte) error
	// Artifacts lists the names of the stored artifacts, sorted.
	Artifacts(ctx context.Context) ([]string, error)
	// Artifact reads an artifact of at most MaxArtifactSize bytes, or
	// returns an *ArtifactMissingError.
	Artifact(ctx context.Context, name string) ([]byte, error)
}

// MaxArtifactSize bounds one artifact.
const MaxArtifactSize = 256 << 20

// validArtifactName accepts a plain file name: no directories, not hidden.
func validArtifactName(name string) bool {
	return name != "" && name[0] != '.' && !strings.ContainsAny(name, "/\\")
}

// ArtifactExistsError reports an artifact name already taken.
type ArtifactExistsError struct{ Store, Name string }

func (e *ArtifactExistsError) Error() string {
	return fmt.Sprintf("%s: artifact %s exists already", e.Store, e.Name)
}

// ArtifactMissingError reports an artifact that is not in the store.
type ArtifactMissingError struct{ Store, Name string }

func (e *ArtifactMissingError) Error() string {
	return fmt.Sprintf("%s: there is no artifact %s", e.Store, e.Name)
}

// EntryMissingError reports an entry that is not in the store.
type EntryMissingError struct {
	Store string
	Seq   int64
}

func (e *EntryMissingError) Error() string {
	return fmt.Sprintf("%s: there is no entry %d", e.Store, e.Seq)
}

// ReadOnlyError reports a write to a store opened to read only.
type ReadOnlyError struct{ Store string }

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("%s: opened to read only; this command does not write to it", e.Store)
}

// Options for Open.
type Options struct {
	// ReadOnly opens an object store without the write probe (read-only
	// credentials suffice) and refuses writes to it.
	ReadOnly      bool
	Base          string // directory that a relative file:// path is taken from
	RetentionDays int    // Object Lock (object retention) days for object stores
}

// Open opens a store by URL: file://DIR (a relative DIR is taken from
// opt.Base), s3://BUCKET/PREFIX with optional query parameters endpoint,
// region and path_style=true for S3-compatible stores (MinIO, Spaces, OCI), or
// gs://BUCKET/PREFIX with an optional endpoint (an emulator).
func Open(ctx context.Context, raw string, opt Options) (Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("evidence store %q: %v", raw, err)
	}
	switch u.Scheme {
	case "file":
		p := strings.TrimPrefix(raw, "file://")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if p == "" {
			return nil, fmt.Errorf("evidence store %q names no directory", raw)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(opt.Base, p)
		}
		return OpenDir(p)
	case "s3":
		return OpenS3(ctx, u, S3Options{RetentionDays: opt.RetentionDays, ReadOnly: opt.ReadOnly})
	case "gs":
		return OpenGCS(ctx, u, GCSOptions{RetentionDays: opt.RetentionDays, ReadOnly: opt.ReadOnly})
	}
	return nil, fmt.Errorf("evidence store %q: scheme must be file://, s3:// or gs://", raw)
}
