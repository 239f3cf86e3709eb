// Package siem forwards audit entries to a security information and event
// management system: as RFC 5424 syslog messages over TCP or TLS (octet
// counting framing, RFC 6587), or as JSON over HTTPS. A cursor records the
// next entry to send; it moves only past entries the receiver is shown to have
// accepted, so every entry is delivered at least once.
package siem

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/atomicfile"
)

// Facility 13 (log audit), severity 6 (informational).
const priority = 13*8 + 6

// sdID is the structured-data element of groundzero messages. 32473 is the
// private enterprise number reserved for documentation (RFC 5612).
const sdID = "groundzero@32473"

// Format5424 renders one entry as an RFC 5424 message whose MSG is the entry's
// exact bytes, so the receiver can re-verify the chain.
func Format5424(e *audit.Entry, line []byte, host string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s groundzero %d %s [%s seq=\"%d\" prev=\"%s\"] ",
		priority, e.Time, header(host, 255), os.Getpid(), header(e.Action, 32), sdID, e.Seq, e.Prev)
	b.Write(line)
	return b.Bytes()
}

// header makes a header field: printable US-ASCII without spaces, at most n
// characters, "-" when empty.
func header(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 && b.Len() < n {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// Frame applies RFC 6587 octet counting: "LEN SP MSG".
func Frame(msg []byte) []byte {
	return append([]byte(strconv.Itoa(len(msg))+" "), msg...)
}

// Sender delivers a batch of entries, returning nil only when the receiver
// has shown it accepted all of them.
type Sender interface {
	Send(ctx context.Context, entries []*audit.Entry, lines [][]byte) error
	String() string
}

// Syslog sends to a syslog receiver over TCP, or TLS when TLS is set.
type Syslog struct {
	Addr    string
	TLS     *tls.Config
	Host    string
	Timeout time.Duration
}

func (s *Syslog) String() string {
	if s.TLS != nil {
		return "tls://" + s.Addr
	}
	return "tcp://" + s.Addr
}

// RejectedError reports a receiver that did not accept what was written.
type RejectedError struct {
	Dest   string
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s did not accept the messages: %s", e.Dest, e.Reason)
}

// Send writes the batch on a fresh connection, then half-closes it and reads
// until the receiver closes its side. A receiver that accepted the stream
// reads it to the end and closes cleanly; one that rejected the client (a
// syslog server that drops a TLS client it does not trust, with no write
// error on our side) resets the connection or sends an alert, and the batch
// counts as not delivered.
func (s *Syslog) Send(ctx context.Context, entries []*audit.Entry, lines [][]byte) error {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(timeout))
	var conn net.Conn = raw
	var tconn *tls.Conn
	if s.TLS != nil {
		tconn = tls.Client(raw, s.TLS)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return &RejectedError{Dest: s.String(), Reason: "TLS handshake: " + err.Error()}
		}
		conn = tconn
	}
	var buf bytes.Buffer
	for i, e := range entries {
		buf.Write(Frame(Format5424(e, lines[i], s.Host)))
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		return &RejectedError{Dest: s.String(), Reason: err.Error()}
	}
	if tconn != nil {
		if err := tconn.CloseWrite(); err != nil {
			return &RejectedError{Dest: s.String(), Reason: err.Error()}
		}
	} else if tc, ok := raw.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return &RejectedError{Dest: s.String(), Reason: err.Error()}
		}
	}
	_, err = io.Copy(io.Discard, conn)
	if err != nil {
		return &RejectedError{Dest: s.String(), Reason: "the receiver dropped the connection instead of closing it (" + err.Error() + ")"}
	}
	return nil
}

// HTTP posts a batch as newline-delimited JSON (the entries' exact bytes) and
// counts it delivered on a 2xx answer.
type HTTP struct {
	URL    string
	Client *http.Client
	// Token, when set, is sent as a bearer token; it never appears in
	// errors.
	Token string
}

func (h *HTTP) String() string { return h.URL }

// Send posts the batch.
func (h *HTTP) Send(ctx context.Context, entries []*audit.Entry, lines [][]byte) error {
	var body bytes.Buffer
	for _, l := range lines {
		body.Write(l)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return &RejectedError{Dest: h.URL, Reason: resp.Status}
	}
	return nil
}

// Cursor is the next seq to ship to one destination, kept in a file.
type Cursor struct{ Path string }

// Load returns the next seq (0 when the cursor file does not exist).
func (c Cursor) Load() (int64, error) {
	data, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: not a cursor", c.Path)
	}
	return n, nil
}

// Save atomically records the next seq.
func (c Cursor) Save(n int64) error {
	return atomicfile.Write(c.Path, []byte(strconv.FormatInt(n, 10)+"\n"), 0o644)
}
