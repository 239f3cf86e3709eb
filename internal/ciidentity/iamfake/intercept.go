package iamfake

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Interceptor is an HTTPS proxy on 127.0.0.1 for clients that cannot be
// given another endpoint: it answers CONNECT to the hosts it serves by
// terminating TLS itself, with a certificate its own test CA issued, and
// hands each request to the host's handler. CONNECT to any other host is
// refused. A client reaches it through the standard HTTPS_PROXY and trusts
// it through SSL_CERT_FILE (CAFile): nothing a client does not read anyway.
type Interceptor struct {
	URL    string // http://127.0.0.1:PORT, for HTTPS_PROXY
	CAFile string // the CA certificate, PEM

	hosts map[string]http.Handler
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	l     net.Listener

	mu      sync.Mutex
	certs   map[string]*tls.Certificate
	refused []string
	open    map[net.Conn]bool
	conns   sync.WaitGroup
}

// Intercept starts an interceptor for hosts (host names, port 443), with
// its CA certificate written to dir/ca.pem.
func Intercept(dir string, hosts map[string]http.Handler) (*Interceptor, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "groundzero test interception CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	i := &Interceptor{URL: "http://" + l.Addr().String(), CAFile: caFile, hosts: hosts, ca: ca, caKey: key, l: l, certs: map[string]*tls.Certificate{}, open: map[net.Conn]bool{}}
	go i.accept()
	return i, nil
}

// Close stops the interceptor and ends the tunnels still open.
func (i *Interceptor) Close() {
	i.l.Close()
	i.mu.Lock()
	for c := range i.open {
		c.Close()
	}
	i.mu.Unlock()
	i.conns.Wait()
}

// Refused lists the CONNECT targets refused, in order.
func (i *Interceptor) Refused() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.refused)
}

func (i *Interceptor) accept() {
	for {
		c, err := i.l.Accept()
		if err != nil {
			return
		}
		i.mu.Lock()
		i.open[c] = true
		i.mu.Unlock()
		i.conns.Add(1)
		go func() {
			defer i.conns.Done()
			i.serve(c)
			i.mu.Lock()
			delete(i.open, c)
			i.mu.Unlock()
		}()
	}
}

// serve reads one CONNECT and serves the tunnelled TLS connection.
func (i *Interceptor) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	host, port, _ := net.SplitHostPort(req.Host)
	h := i.hosts[host]
	if req.Method != http.MethodConnect || port != "443" || h == nil {
		i.mu.Lock()
		i.refused = append(i.refused, req.Method+" "+req.Host)
		i.mu.Unlock()
		fmt.Fprint(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	cert, err := i.cert(host)
	if err != nil {
		return
	}
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.Serve(&oneConn{c: tc})
}

// cert is the leaf certificate for host, issued by the CA.
func (i *Interceptor) cert(host string) (*tls.Certificate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.certs[host]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(i.certs) + 2)), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.ca, &key.PublicKey, i.caKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	i.certs[host] = c
	return c, nil
}

// oneConn is a listener that yields one connection, then reports itself
// closed once that connection is.
type oneConn struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (o *oneConn) Accept() (net.Conn, error) {
	o.mu.Lock()
	if o.done == nil {
		o.done = make(chan struct{})
	}
	o.mu.Unlock()
	var c net.Conn
	o.once.Do(func() { c = &closeNotify{Conn: o.c, done: o.done} })
	if c != nil {
		return c, nil
	}
	<-o.done
	return nil, errors.New("connection closed")
}

func (o *oneConn) Close() error   { return nil }
func (o *oneConn) Addr() net.Addr { return o.c.LocalAddr() }

type closeNotify struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotify) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
