package trail

import (
	"bytes"
	"context"
	"fmt"

	"github.com/groundzero/groundzero/audit"
)

// DivergedError reports two stores whose trails differ.
type DivergedError struct {
	From, To string
	Seq      int64
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("%s and %s hold different entries at seq %d; refusing to export", e.From, e.To, e.Seq)
}

func readLines(ctx context.Context, s Store) ([][]byte, error) {
	var lines [][]byte
	err := Scan(ctx, s, nil, func(line []byte) error {
		lines = append(lines, bytes.Clone(line))
		return nil
	})
	return lines, err
}

// Export copies the trail in src to dst: the entries dst lacks and every
// checkpoint with its signatures. Entries dst already holds must be
// byte-identical. Running it again copies nothing.
func Export(ctx context.Context, src, dst Store) (entries int64, checkpoints int, err error) {
	lines, err := readLines(ctx, src)
	if err != nil {
		return 0, 0, err
	}
	have, err := readLines(ctx, dst)
	if err != nil {
		return 0, 0, err
	}
	for i, l := range have {
		if i >= len(lines) || !bytes.Equal(l, lines[i]) {
			return 0, 0, &DivergedError{From: src.URL(), To: dst.URL(), Seq: int64(i)}
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
		if err != nil {
			return entries + int64(written), 0, fmt.Errorf("%s: %w", dst.URL(), err)
		}
		n += int64(written)
		entries += int64(written)
		last = lines[n-1]
	}
	srcCPs, err := src.Checkpoints(ctx)
	if err != nil {
		return entries, 0, err
	}
	dstCPs, err := dst.Checkpoints(ctx)
	if err != nil {
		return entries, 0, err
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
			return entries, checkpoints, fmt.Errorf("%s %s: %v", src.URL(), c.Name, err)
		}
		if err := dst.PutCheckpoint(ctx, cp.Size, c.Body, c.Sigs); err != nil {
			return entries, checkpoints, err
		}
		checkpoints++
	}
	return entries, checkpoints, nil
}
