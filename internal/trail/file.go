package trail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/atomicfile"
)

// Dir is a local store: one segment file with an entry per line, appended
// under an exclusive file lock with O_APPEND and fsync before the append
// returns; checkpoints written with temp file, fsync, rename and a directory
// fsync.
//
//	DIR/entries.log          the entries, one per line
//	DIR/checkpoints/N.cp     checkpoint of size N, with N.cp.asc / N.cp.sig
//	DIR/lock                 the append lock
//	DIR/torn/                bytes that `audit repair` moved aside
//	DIR/artifacts/NAME       evidence kept beside the trail (apply logs)
type Dir struct {
	dir string
}

const (
	segmentName    = "entries.log"
	checkpointsDir = "checkpoints"
	lockName       = "lock"
	tornDir        = "torn"
	artifactsDir   = "artifacts"
)

// OpenDir opens (creating) a local store.
func OpenDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(dir, checkpointsDir), 0o755); err != nil {
		return nil, fmt.Errorf("evidence store %s: %w", dir, err)
	}
	return &Dir{dir: dir}, nil
}

// URL names the store.
func (d *Dir) URL() string { return "file://" + d.dir }

// Path returns the store directory.
func (d *Dir) Path() string { return d.dir }

func (d *Dir) segment() string { return filepath.Join(d.dir, segmentName) }

// lock takes the store's lock (syscall.LOCK_EX to append, LOCK_SH to read the
// tail); the returned function releases it.
func (d *Dir) lock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// tail returns the last complete line of the segment and the number of
// entries (from its seq), or a *TornError.
func (d *Dir) tail(f *os.File) (int64, []byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil, nil
	}
	// Read back far enough to hold the last line.
	window := int64(audit.MaxEntrySize + 2)
	start := max(0, size-window)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return 0, nil, err
	}
	if buf[len(buf)-1] != '\n' {
		torn := int64(len(buf))
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			torn = int64(len(buf) - i - 1)
		}
		return 0, nil, &TornError{Store: d.URL(), Bytes: torn}
	}
	body := buf[:len(buf)-1]
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && start > 0 {
		return 0, nil, fmt.Errorf("%s: last entry is longer than %d bytes", d.URL(), audit.MaxEntrySize)
	}
	last := body[i+1:]
	e, err := audit.ParseEntry(last)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: last entry is unreadable: %v", d.URL(), err)
	}
	return e.Seq + 1, append([]byte(nil), last...), nil
}

// Head returns the entry count and last entry. It holds the shared lock so
// that it never sees an append in progress as a torn tail.
func (d *Dir) Head(ctx context.Context) (int64, []byte, error) {
	unlock, err := d.lock(syscall.LOCK_SH)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	f, err := os.Open(d.segment())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	return d.tail(f)
}

// Append appends lines under the lock, compare-and-swap on the tail.
func (d *Dir) Append(ctx context.Context, first int64, prevLast []byte, lines [][]byte) (int, error) {
	unlock, err := d.lock(syscall.LOCK_EX)
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, err := os.OpenFile(d.segment(), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, last, err := d.tail(f)
	if err != nil {
		return 0, err
	}
	if n != first || !bytes.Equal(last, prevLast) {
		return 0, ErrConflict
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	// One write: a crash leaves whole lines or a torn tail, never a hole.
	if _, err := f.Write(b.Bytes()); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if first == 0 {
		if err := atomicfile.SyncDir(d.dir); err != nil {
			return 0, err
		}
	}
	return len(lines), nil
}

// AppendLocked builds lines from the tail it finds under the exclusive lock
// and appends them: no other writer can come between, so there is no
// conflict to retry.
func (d *Dir) AppendLocked(ctx context.Context, build func(n int64, last []byte) ([][]byte, error)) error {
	unlock, err := d.lock(syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := os.OpenFile(d.segment(), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	n, last, err := d.tail(f)
	if err != nil {
		return err
	}
	lines, err := build(n, last)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if n == 0 {
		return atomicfile.SyncDir(d.dir)
	}
	return nil
}

// Entries opens the segment.
func (d *Dir) Entries(ctx context.Context) (io.ReadCloser, error) {
	f, err := os.Open(d.segment())
	if errors.Is(err, fs.ErrNotExist) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return f, err
}

// PutCheckpoint writes a checkpoint and its signatures atomically, merging
// with an existing identical checkpoint's signatures.
func (d *Dir) PutCheckpoint(ctx context.Context, size int64, body []byte, sigs map[string][]byte) error {
	p := filepath.Join(d.dir, checkpointsDir, checkpointObject(size, body))
	// Signatures first, then the body: a reader never sees a body without
	// the signatures that came with it.
	for ext, data := range sigs {
		if err := atomicfile.Write(p+ext, data, 0o644); err != nil {
			return err
		}
	}
	return atomicfile.Write(p, body, 0o644)
}

// Checkpoints lists the stored checkpoints.
func (d *Dir) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	dir := filepath.Join(d.dir, checkpointsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []StoredCheckpoint
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".cp") {
			continue
		}
		body, err := readBounded(filepath.Join(dir, name), 4096)
		if err != nil {
			return nil, err
		}
		sc := StoredCheckpoint{Name: checkpointsDir + "/" + name, Body: body, Sigs: map[string][]byte{}}
		for _, ext := range []string{".asc", ".sig"} {
			if data, err := readBounded(filepath.Join(dir, name+ext), 1<<20); err == nil {
				sc.Sigs[ext] = data
			}
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	return data, nil
}

// Repair moves a torn tail aside into DIR/torn/ and truncates the segment to
// its last complete line. It returns the number of bytes moved and where.
func (d *Dir) Repair(now time.Time) (int64, string, error) {
	unlock, err := d.lock(syscall.LOCK_EX)
	if err != nil {
		return 0, "", err
	}
	defer unlock()
	f, err := os.OpenFile(d.segment(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	_, _, err = d.tail(f)
	var torn *TornError
	if !errors.As(err, &torn) {
		return 0, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	cut := fi.Size() - torn.Bytes
	data := make([]byte, torn.Bytes)
	if _, err := f.ReadAt(data, cut); err != nil {
		return 0, "", err
	}
	if err := os.MkdirAll(filepath.Join(d.dir, tornDir), 0o755); err != nil {
		return 0, "", err
	}
	aside := filepath.Join(d.dir, tornDir, now.UTC().Format("20060102T150405Z")+"-at-"+strconv.FormatInt(cut, 10)+".bin")
	if err := atomicfile.Write(aside, data, 0o644); err != nil {
		return 0, "", err
	}
	if err := f.Truncate(cut); err != nil {
		return 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, "", err
	}
	return torn.Bytes, aside, nil
}

// PutArtifact writes DIR/artifacts/NAME atomically, refusing to replace one.
func (d *Dir) PutArtifact(ctx context.Context, name string, data []byte) error {
	if !validArtifactName(name) {
		return fmt.Errorf("bad artifact name %q", name)
	}
	dir := filepath.Join(d.dir, artifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Lstat(p); err == nil {
		return &ArtifactExistsError{Store: d.URL(), Name: name}
	}
	return atomicfile.Write(p, data, 0o444)
}

// Artifacts lists DIR/artifacts/, sorted, leaving out anything that is not
// a valid artifact name (an interrupted write's temporary file, say).
func (d *Dir) Artifacts(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(d.dir, artifactsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && validArtifactName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Artifact reads DIR/artifacts/NAME.
func (d *Dir) Artifact(ctx context.Context, name string) ([]byte, error) {
	if !validArtifactName(name) {
		return nil, fmt.Errorf("bad artifact name %q", name)
	}
	data, err := readBounded(filepath.Join(d.dir, artifactsDir, name), MaxArtifactSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ArtifactMissingError{Store: d.URL(), Name: name}
	}
	return data, err
}

// EntriesFrom streams the segment from the line of seq first on. The start
// is found by reading back from the end, so the cost grows with the entries
// after first. It reads the segment as it was when called.
func (d *Dir) EntriesFrom(ctx context.Context, first int64) (io.ReadCloser, error) {
	if first <= 0 {
		return d.Entries(ctx)
	}
	unlock, err := d.lock(syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, err := os.Open(d.segment())
	if errors.Is(err, fs.ErrNotExist) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, err
	}
	n, _, err := d.tail(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := fi.Size()
	if first >= n {
		f.Close()
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	// The start of line first is just after the (n-first+1)th newline
	// from the end, counting the final one.
	want := n - first + 1
	off, err := backNewlines(f, size, want)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, size-off), f}, nil
}

// backNewlines returns the offset just after the want-th newline counted back
// from size, or 0 when there are fewer.
func backNewlines(f *os.File, size, want int64) (int64, error) {
	buf := make([]byte, 256<<10)
	end := size
	for end > 0 {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' {
				want--
				if want == 0 {
					return start + int64(i) + 1, nil
				}
			}
		}
		end = start
	}
	return 0, nil
}

// statesDir holds the state bundles, named to list largest size first.
const statesDir = "states"

// PutState writes DIR/states/NAME atomically.
func (d *Dir) PutState(ctx context.Context, size int64, data []byte) error {
	dir := filepath.Join(d.dir, statesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, stateObject(size, data))
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	return atomicfile.Write(p, data, 0o444)
}

// States reads the bundles with the largest sizes. A directory listing
// grows with the bundles kept, but holds names only; the bundles read are
// at most limit.
func (d *Dir) States(ctx context.Context, after string, limit int) ([]StoredState, error) {
	ents, err := os.ReadDir(filepath.Join(d.dir, statesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []StoredState
	for _, e := range ents { // ReadDir sorts by name: largest size first
		name := e.Name()
		size, ok := stateSize(name)
		if !ok || (after != "" && statesDir+"/"+name <= after) || !e.Type().IsRegular() {
			continue
		}
		data, err := readBounded(filepath.Join(d.dir, statesDir, name), MaxStateSize)
		if err != nil {
			return nil, err
		}
		out = append(out, StoredState{Name: statesDir + "/" + name, Size: size, Data: data})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// Entry reads entry seq from whichever end of the segment is nearer (a local
// store keeps no index): the first entries from the start, the newest ones,
// which writers read, back from the end.
func (d *Dir) Entry(ctx context.Context, seq int64) ([]byte, error) {
	n, _, err := d.Head(ctx)
	switch {
	case err != nil:
		return nil, err
	case seq < 0 || seq >= n:
		return nil, &EntryMissingError{Store: d.URL(), Seq: seq}
	}
	var r io.ReadCloser
	if seq < n-seq {
		r, err = d.Entries(ctx)
	} else {
		r, err = d.EntriesFrom(ctx, seq)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 2*audit.MaxEntrySize)
	for i := int64(0); ; i++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("%s: entry near %d is longer than %d bytes", d.URL(), seq, audit.MaxEntrySize)
		}
		if err != nil {
			return nil, &EntryMissingError{Store: d.URL(), Seq: seq}
		}
		if i == seq || seq >= n-seq {
			return append([]byte(nil), line[:len(line)-1]...), nil
		}
	}
}
