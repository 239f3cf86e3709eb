// Package confirm is the two-step confirmation before an interactive apply:
// the operator first types a token derived from the intent and the
// environment, then the exact word APPLY. Anything else, or the end of input,
// aborts.
package confirm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Word is the second answer.
const Word = "APPLY"

// NoTTYError reports that there is no terminal to ask on.
type NoTTYError struct{ Err error }

func (e *NoTTYError) Error() string { return "no terminal to confirm on: " + e.Err.Error() }

// AbortError reports a confirmation that did not happen.
type AbortError struct{ Reason string }

func (e *AbortError) Error() string { return "apply aborted: " + e.Reason }

// TTY is a terminal to ask on.
type TTY struct {
	in  *bufio.Reader
	out io.Writer
	f   *os.File
}

// OpenTTY opens the controlling terminal (/dev/tty), whatever stdin is.
func OpenTTY() (*TTY, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, &NoTTYError{Err: err}
	}
	return &TTY{in: bufio.NewReader(f), out: f, f: f}, nil
}

// New asks on the given reader and writer (for tests).
func New(in io.Reader, out io.Writer) *TTY { return &TTY{in: bufio.NewReader(in), out: out} }

// Close releases the terminal.
func (t *TTY) Close() error {
	if t.f != nil {
		return t.f.Close()
	}
	return nil
}

func (t *TTY) ask(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	line, err := t.in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", &AbortError{Reason: "no answer (end of input)"}
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// Confirm asks for the token, then for APPLY.
func (t *TTY) Confirm(summary, token string) error {
	fmt.Fprintf(t.out, "%s\n", summary)
	got, err := t.ask(fmt.Sprintf("Type the confirmation token %s to continue: ", token))
	if err != nil {
		return err
	}
	if got != token {
		return &AbortError{Reason: "the token typed does not match"}
	}
	got, err = t.ask("Type " + Word + " to apply exactly this plan: ")
	if err != nil {
		return err
	}
	if got != Word {
		return &AbortError{Reason: fmt.Sprintf("%q is not %s", truncate(got), Word)}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
