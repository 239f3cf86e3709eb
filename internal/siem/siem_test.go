package siem_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/siem"
	"github.com/groundzero/groundzero/internal/syslogd"
)

func batch(t *testing.T, n int) ([]*audit.Entry, [][]byte) {
	t.Helper()
	var es []*audit.Entry
	var lines [][]byte
	prev := audit.GenesisPrev
	for i := 0; i < n; i++ {
		e := &audit.Entry{Seq: int64(i), Time: "2026-11-29T10:00:00Z", Actor: "ci", Action: "gate", Subject: "manifest",
			Details: map[string]any{"ok": true, "note": fmt.Sprintf("entry %d: quotes \" and ünïcode", i)}, Prev: prev}
		l, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		es, lines = append(es, e), append(lines, l)
		prev = audit.ChainHex(l)
	}
	return es, lines
}

func tlsConf(t *testing.T, dir, client string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, client+".pem"), filepath.Join(dir, client+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}
}

// Messages arrive intact at a real rsyslog, over TCP and over mutual TLS.
func TestSyslogDelivery(t *testing.T) {
	srv := syslogd.Start(t)
	es, lines := batch(t, 20)
	ctx := context.Background()
	if err := (&siem.Syslog{Addr: srv.TCPAddr, Host: "ci-runner"}).Send(ctx, es[:10], lines[:10]); err != nil {
		t.Fatalf("Send over TCP: %v", err)
	}
	if err := (&siem.Syslog{Addr: srv.TLSAddr, Host: "ci-runner", TLS: tlsConf(t, srv.Dir, "client")}).Send(ctx, es[10:], lines[10:]); err != nil {
		t.Fatalf("Send over TLS: %v", err)
	}
	got := srv.Received(20, 10*time.Second)
	if len(got) != 20 {
		t.Fatalf("received %d messages, want 20: %q", len(got), got)
	}
	for i, g := range got {
		want := fmt.Sprintf(`[groundzero@32473 seq="%d" prev="%s"] %s`, i, es[i].Prev, lines[i])
		if g != want {
			t.Errorf("message %d = %q, want %q", i, g, want)
		}
	}
}

// A TLS client the server rejects sees no write error; Send must still report
// failure, and nothing is received.
func TestSyslogRejectedClientIsDetected(t *testing.T) {
	srv := syslogd.Start(t)
	es, lines := batch(t, 5)
	err := (&siem.Syslog{Addr: srv.TLSAddr, TLS: tlsConf(t, srv.Dir, "rogue")}).Send(context.Background(), es, lines)
	var rej *siem.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Send with an untrusted client certificate = %v, want RejectedError", err)
	}
	if got := srv.Received(1, time.Second); len(got) != 0 {
		t.Fatalf("rsyslog stored %d messages from a rejected client", len(got))
	}
}

func TestHTTPDelivery(t *testing.T) {
	var got []string
	var auth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		auth = r.Header.Get("Authorization")
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			http.Error(w, "bad type", 415)
			return
		}
		got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}))
	defer srv.Close()
	es, lines := batch(t, 3)
	h := &siem.HTTP{URL: srv.URL, Client: srv.Client(), Token: "t0ken"}
	if err := h.Send(context.Background(), es, lines); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != string(lines[2]) || auth != "Bearer t0ken" {
		t.Fatalf("server got %q (auth %q)", got, auth)
	}
	failing := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "full", 503) }))
	defer failing.Close()
	err := (&siem.HTTP{URL: failing.URL, Client: failing.Client(), Token: "t0ken"}).Send(context.Background(), es, lines)
	if err == nil || strings.Contains(err.Error(), "t0ken") {
		t.Fatalf("Send to a failing server = %v, want an error without the token", err)
	}
}

func TestFraming(t *testing.T) {
	es, lines := batch(t, 1)
	msg := siem.Format5424(es[0], lines[0], "host name with spaces")
	if !strings.HasPrefix(string(msg), "<110>1 2026-11-29T10:00:00Z hostnamewithspaces groundzero ") {
		t.Fatalf("Format5424 = %q", msg)
	}
	framed := siem.Frame(msg)
	if want := fmt.Sprintf("%d %s", len(msg), msg); string(framed) != want {
		t.Fatalf("Frame = %q, want %q", framed, want)
	}
}
