package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/audit"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/siem"
	"github.com/groundzero/groundzero/internal/trail"
)

func (a *app) auditShipCmd() *cobra.Command {
	var storeURL, syslogURL, httpURL, caFile, certFile, keyFile, oldCert, oldKey string
	var batch int
	c := &cobra.Command{
		Use:   "ship --syslog tcp://HOST:PORT|tls://HOST:PORT | --http URL",
		Short: "forward entries to a SIEM (syslog RFC 5424 or JSON over HTTPS), resuming from a cursor",
		Long: `ship sends every entry not yet delivered to the destination: as RFC 5424
syslog messages (octet-counting framing) over TCP or TLS, or as
newline-delimited JSON posted over HTTPS. It keeps a cursor per destination in
.groundzero/ship/ and moves it only past entries the receiver is shown to have
accepted: for syslog, the receiver must read the batch to the end and close the
connection cleanly (a TLS server that rejects the client drops it without any
write error; that is detected and reported); for HTTPS, a 2xx answer. Entries
may arrive twice, never not at all. An HTTPS bearer token is read from
GROUNDZERO_SIEM_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// --key is a KEYSPEC (a signing key) in every other command; the
			// TLS client files have names of their own.
			for _, f := range []struct{ old, now, what string }{{"key", "tls-key", "TLS client key"}, {"cert", "tls-cert", "TLS client certificate"}} {
				if cmd.Flags().Changed(f.old) {
					return usage(fmt.Errorf("audit ship has no --%s: the %s is --%s", f.old, f.what, f.now),
						"use --tls-cert FILE --tls-key FILE for mutual TLS; --key names a signing key (KEYSPEC) in the other commands")
				}
			}
			if (syslogURL == "") == (httpURL == "") {
				return usage(errors.New("give exactly one of --syslog and --http"), "")
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			store, err := a.openStore(r, storeURL)
			if err != nil {
				return err
			}
			tlsConf, err := clientTLS(caFile, certFile, keyFile)
			if err != nil {
				return usage(err, "--ca, --tls-cert and --tls-key name PEM files")
			}
			host, _ := os.Hostname()
			var dest siem.Sender
			if syslogURL != "" {
				u, err := url.Parse(syslogURL)
				if err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Host == "" {
					return usage(fmt.Errorf("--syslog %q must be tcp://HOST:PORT or tls://HOST:PORT", syslogURL), "")
				}
				s := &siem.Syslog{Addr: u.Host, Host: host}
				if u.Scheme == "tls" {
					if tlsConf == nil {
						tlsConf = &tls.Config{}
					}
					tlsConf.ServerName, _, _ = cutHost(u.Host)
					s.TLS = tlsConf
				}
				dest = s
			} else {
				u, err := url.Parse(httpURL)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
					return usage(fmt.Errorf("--http %q must be an https:// URL", httpURL), "")
				}
				client := &http.Client{Timeout: 30 * time.Second}
				if tlsConf != nil {
					client.Transport = &http.Transport{TLSClientConfig: tlsConf}
				}
				dest = &siem.HTTP{URL: httpURL, Client: client, Token: a.getenv("GROUNDZERO_SIEM_TOKEN")}
			}
			cursor := siem.Cursor{Path: filepath.Join(r.Abs(repo.LocalStateDir), "ship", sha256hex([]byte(store.URL() + "\n" + dest.String()))[:16]+".cursor")}
			if err := os.MkdirAll(filepath.Dir(cursor.Path), 0o755); err != nil {
				return usage(err, "")
			}
			from, err := cursor.Load()
			if err != nil {
				return usage(err, "remove the damaged cursor file to ship everything again")
			}
			sent, serr := a.ship(store, dest, cursor, from, batch)
			if sent > 0 || serr == nil {
				fmt.Fprintf(a.stdout, "shipped %d entries to %s (seq %d to %d); cursor at %d\n", sent, dest, from, from+sent-1, from+sent)
			}
			rec := a.recorder(r)
			details := map[string]any{"from": from, "shipped": sent, "ok": serr == nil}
			if serr != nil {
				details["error"] = serr.Error()
			}
			rec.add("audit.ship", dest.String(), details)
			if serr != nil {
				return rec.flush(usage(fmt.Errorf("shipping to %s stopped at seq %d: %w", dest, from+sent, serr),
					"the cursor stays before the undelivered entries; fix the receiver (or the client certificate) and run ship again"))
			}
			return rec.flush(nil)
		},
	}
	storeFlag(c, &storeURL)
	c.Flags().StringVar(&syslogURL, "syslog", "", "syslog receiver: tcp://HOST:PORT or tls://HOST:PORT")
	c.Flags().StringVar(&httpURL, "http", "", "HTTPS endpoint that accepts newline-delimited JSON")
	c.Flags().StringVar(&caFile, "ca", "", "PEM file of the CA that signed the receiver's certificate")
	c.Flags().StringVar(&certFile, "tls-cert", "", "PEM client certificate for mutual TLS")
	c.Flags().StringVar(&keyFile, "tls-key", "", "PEM client key for mutual TLS")
	// The former names, refused with the new ones as a hint.
	c.Flags().StringVar(&oldCert, "cert", "", "")
	c.Flags().StringVar(&oldKey, "key", "", "")
	c.Flags().MarkHidden("cert")
	c.Flags().MarkHidden("key")
	c.Flags().IntVar(&batch, "batch", 500, "entries per delivery")
	return c
}

func cutHost(hostport string) (string, string, error) {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i], hostport[i+1:], nil
		}
	}
	return hostport, "", nil
}

func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		conf.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s do not load as a pair", certFile, keyFile)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// ship sends entries from seq from on, batch by batch, saving the cursor after
// each accepted batch.
func (a *app) ship(store trail.Store, dest siem.Sender, cursor siem.Cursor, from int64, batch int) (int64, error) {
	if batch < 1 {
		batch = 1
	}
	var entries []*audit.Entry
	var lines [][]byte
	sent := int64(0)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		if err := dest.Send(a.ctx, entries, lines); err != nil {
			return err
		}
		sent += int64(len(entries))
		entries, lines = entries[:0], lines[:0]
		return cursor.Save(from + sent)
	}
	n := int64(0)
	err := trail.Scan(a.ctx, store, nil, func(line []byte) error {
		defer func() { n++ }()
		if n < from {
			return nil
		}
		e, err := audit.ParseEntry(line)
		if err != nil || e.Seq != n {
			return fmt.Errorf("entry %d is malformed; run `groundzero audit verify`", n)
		}
		entries = append(entries, e)
		lines = append(lines, append([]byte(nil), line...))
		if len(entries) == batch {
			return flush()
		}
		return nil
	})
	// Every complete entry is shipped even when an append was torn.
	var torn *trail.TornError
	if errors.As(err, &torn) {
		a.info("%v; shipping the complete entries before it", err)
		err = nil
	}
	if err == nil {
		err = flush()
	}
	return sent, err
}
