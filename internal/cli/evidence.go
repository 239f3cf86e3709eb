package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/evidence"
)

func (a *app) evidenceCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "evidence",
		Short: "export, verify and report an evidence bundle for auditors",
	}
	c.AddCommand(a.evidenceExportCmd(), a.evidenceVerifyCmd(), a.evidenceReportCmd())
	return c
}

// parsePeriod reads --since or --until: an RFC 3339 time, or a date
// (YYYY-MM-DD), which means the start of the day for --since and its end for
// --until.
func parsePeriod(flag, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Second)
		}
		return t, nil
	}
	return time.Time{}, usage(fmt.Errorf("%s %q is not a time", flag, v), "give an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)")
}

// bundleError gives a bundle that cannot be unpacked its exit code and hint.
func bundleError(file string, err error) error {
	var pe *evidence.PathError
	var se *evidence.SizeError
	switch {
	case errors.As(err, &pe):
		return failed(fmt.Errorf("%s: %w", file, err), "a bundle holds plain files with relative names only; this one was tampered with or not made by groundzero: ask the exporter for a fresh copy")
	case errors.As(err, &se):
		return failed(fmt.Errorf("%s: %w", file, err), "the bundle is beyond the size a reader accepts; ask for an export of a shorter period (--since, --until)")
	}
	return failed(fmt.Errorf("%s: %w", file, err), "give the .tar.gz that `groundzero evidence export` wrote, unchanged")
}

// problemsSummary names the first problems for the error line.
func problemsSummary(ps []evidence.Problem) string {
	var names []string
	for i, p := range ps {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(ps)-3))
			break
		}
		names = append(names, p.String())
	}
	return strings.Join(names, "; ")
}
