package trail

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/groundzero/groundzero/audit"
)

// DivergedError reports two stores whose trails differ: different entries at
// Seq, or, when Artifact is set, different bytes under one artifact name.
type DivergedError struct {
	From, To string
	Seq      int64
	Artifact string
}

func (e *DivergedError) Error() string {
	if e.Artifact != "" {
		return fmt.Sprintf("%s and %s hold different artifacts named %s; refusing to export", e.From, e.To, e.Artifact)
	}
	return fmt.Sprintf("%s and %s hold different entries at seq %d; refusing to export", e.From, e.To, e.Seq)
}

// NoObjectLockError reports an export target without Object Lock: what is
// exported there could be rewritten or deleted, so it is not WORM evidence.
type NoObjectLockError struct{ Store string }

func (e *NoObjectLockError) Error() string {
	return fmt.Sprintf("%s has no Object Lock: exported evidence could be rewritten or deleted; refusing to export", e.Store)
}

// ExportOptions tunes Export.
type ExportOptions struct {
	// AllowNoObjectLock exports to a target without Object Lock. It is a
	// waiver that governance grants, not a convenience.
	AllowNoObjectLock bool
}

// ExportResult says what Export copied.
type ExportResult struct {
	Entries     int64
	Checkpoints int
	Artifacts   int
	ObjectLock  bool // the target keeps its objects under Object Lock
}

// objectLocker is a store that can tell whether it keeps objects under
// Object Lock; a store that cannot does not.
type objectLocker interface{ ObjectLock() bool }

func readLines(ctx context.Context, s Store) ([][]byte, error) {
	var lines [][]byte
	err := Scan(ctx, s, nil, func(line []byte) error {
		lines = append(lines, bytes.Clone(line))
		return nil
	})
	return lines, err
}

// Export copies the trail in src to dst: the entries dst lacks, every
// checkpoint with its signatures and every artifact dst lacks. Entries and
// artifacts dst already holds must be byte-identical. Running it again
// copies nothing. A target without Object Lock is refused with a
// *NoObjectLockError unless opt waives it.
func Export(ctx context.Context, src, dst Store, opt ExportOptions) (ExportResult, error) {
	var res ExportResult
	if ol, ok := dst.(objectLocker); ok {
		res.ObjectLock = ol.ObjectLock()
	}
	if !res.ObjectLock && !opt.AllowNoObjectLock {
		return res, &NoObjectLockError{Store: dst.URL()}
	}
	lines, err := readLines(ctx, src)
	if err != nil {
		return res, err
	}
	have, err := readLines(ctx, dst)
	if err != nil {
		return res, err
	}
	for i, l := range have {
		if i >= len(lines) || !bytes.Equal(l, lines[i]) {
			return res, &DivergedError{From: src.URL(), To: dst.URL(), Seq: int64(i)}
		}
	}
	n := int64(len(have))
	var last []byte
	if n > 0 {
		last = have[n-1]
	}
	for n < int64(len(lines)) {
		end := min(int64(len(lines)), n+256)
		written, err := dst.Append(ctx, n, last, lines[n:end])
		res.Entries += int64(written)
		if err != nil {
			return res, fmt.Errorf("%s: %w", dst.URL(), err)
		}
		n += int64(written)
		last = lines[n-1]
	}
	srcCPs, err := src.Checkpoints(ctx)
	if err != nil {
		return res, err
	}
	dstCPs, err := dst.Checkpoints(ctx)
	if err != nil {
		return res, err
	}
	present := map[string]bool{}
	for _, c := range dstCPs {
		present[string(c.Body)] = true
	}
	for _, c := range srcCPs {
		if present[string(c.Body)] {
			continue
		}
		cp, err := audit.ParseCheckpoint(c.Body)
		if err != nil {
			return res, fmt.Errorf("%s %s: %v", src.URL(), c.Name, err)
		}
		if err := dst.PutCheckpoint(ctx, cp.Size, c.Body, c.Sigs); err != nil {
			return res, err
		}
		res.Checkpoints++
	}
	err = exportArtifacts(ctx, src, dst, &res)
	return res, err
}

// exportArtifacts copies the artifacts dst lacks and compares the ones it
// has.
func exportArtifacts(ctx context.Context, src, dst Store, res *ExportResult) error {
	names, err := src.Artifacts(ctx)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	held, err := dst.Artifacts(ctx)
	if err != nil {
		return err
	}
	has := map[string]bool{}
	for _, name := range held {
		has[name] = true
	}
	for _, name := range names {
		data, err := src.Artifact(ctx, name)
		if err != nil {
			return err
		}
		if !has[name] {
			err = dst.PutArtifact(ctx, name, data)
			if err == nil {
				res.Artifacts++
				continue
			}
			// Another exporter got there first: compare below.
			var ae *ArtifactExistsError
			if !errors.As(err, &ae) {
				return fmt.Errorf("%s: %w", dst.URL(), err)
			}
		}
		there, err := dst.Artifact(ctx, name)
		if err != nil {
			return err
		}
		if !bytes.Equal(there, data) {
			return &DivergedError{From: src.URL(), To: dst.URL(), Artifact: name}
		}
	}
	return nil
}
