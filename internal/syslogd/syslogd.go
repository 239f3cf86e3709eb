// Package syslogd runs a real rsyslog receiver on 127.0.0.1 for tests, with
// a private configuration: one plain TCP input and one TLS input that
// demands a client certificate from its own CA. Every message received is
// written to a file as "STRUCTURED-DATA MSG".
package syslogd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running rsyslogd.
type Server struct {
	TCPAddr string // plain TCP input
	TLSAddr string // TLS input, client certificate required
	Dir     string // holds ca.pem, client.pem/.key (trusted), rogue.pem/.key (untrusted)
	Out     string // file of received messages
	cmd     *exec.Cmd
	pidFile string
}

// Start runs rsyslogd for the test, or fails it with a hint.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartNew()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops rsyslogd and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.Dir)
}

// StartNew runs rsyslogd in a new temporary directory; the caller closes it.
func StartNew() (*Server, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("rsyslogd is not installed: run `make deps` (Debian packages rsyslog and rsyslog-gnutls)")
	}
	dir, err := os.MkdirTemp("", "gzsyslog")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Out: filepath.Join(dir, "received.log"), pidFile: filepath.Join(dir, "rsyslogd.pid")}
	fail := func(err error) (*Server, error) { s.Close(); return nil, err }
	if err := writeCerts(dir); err != nil {
		return fail(err)
	}
	if s.TCPAddr, err = freeAddr(); err != nil {
		return fail(err)
	}
	if s.TLSAddr, err = freeAddr(); err != nil {
		return fail(err)
	}
	_, tcpPort, _ := net.SplitHostPort(s.TCPAddr)
	_, tlsPort, _ := net.SplitHostPort(s.TLSAddr)
	os.MkdirAll(filepath.Join(dir, "work"), 0o755)
	conf := fmt.Sprintf(`global(
  workDirectory="%[1]s/work"
  maxMessageSize="64k"
  defaultNetstreamDriverCAFile="%[1]s/ca.pem"
  defaultNetstreamDriverCertFile="%[1]s/server.pem"
  defaultNetstreamDriverKeyFile="%[1]s/server.key"
)
module(load="imtcp")
template(name="raw" type="string" string="%%structured-data%% %%msg%%\n")
ruleset(name="collect") { action(type="omfile" file="%[2]s" template="raw") }
input(type="imtcp" address="127.0.0.1" port="%[3]s" ruleset="collect")
input(type="imtcp" address="127.0.0.1" port="%[4]s" ruleset="collect"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
`, dir, s.Out, tcpPort, tlsPort)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return fail(err)
	}
	s.cmd = exec.Command(bin, "-n", "-f", confPath, "-i", s.pidFile)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test
	logf, _ := os.Create(filepath.Join(dir, "rsyslogd.stderr"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fail(err)
	}
	for _, addr := range []string{s.TCPAddr, s.TLSAddr} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logf.Name())
				return fail(fmt.Errorf("rsyslogd did not listen on %s: %s", addr, log))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return s, nil
}

// Stop ends rsyslogd.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Received returns the lines received so far, waiting up to wait for at
// least want of them (rsyslog writes asynchronously).
func (s *Server) Received(want int, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		data, _ := os.ReadFile(s.Out)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(data) == 0 {
			lines = nil
		}
		if len(lines) >= want || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(name string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &keyPair{cert, key}, nil
}

func (ca *keyPair) issue(dir, name string, server bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// writeCerts makes a CA with a server and a client certificate, and a rogue
// CA with a client certificate the server will not trust.
func writeCerts(dir string) error {
	ca, err := newCA("groundzero test CA")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		return err
	}
	if err := ca.issue(dir, "server", true); err != nil {
		return err
	}
	if err := ca.issue(dir, "client", false); err != nil {
		return err
	}
	rogue, err := newCA("rogue CA")
	if err != nil {
		return err
	}
	return rogue.issue(dir, "rogue", false)
}
