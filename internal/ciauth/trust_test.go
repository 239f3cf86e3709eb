package ciauth

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A policy without IssuerCA trusts the system roots from their fixed locations only: a
// local issuer whose certificate SSL_CERT_FILE and SSL_CERT_DIR name is not trusted.
func TestVerifyIgnoresEnvironmentCA(t *testing.T) {
	is := newIssuer(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, is.caPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	t.Setenv("SSL_CERT_DIR", dir)
	pol := githubPolicy(is)
	pol.IssuerCA = nil
	_, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), is.githubClaims()), pol, now, true)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !isIssuer(err) || !ok {
		t.Fatalf("Verify(issuer trusted only by SSL_CERT_FILE) = %v, want *IssuerError wrapping x509.UnknownAuthorityError", err)
	}
}

// IssuerCA is exactly the CA trusted: another CA, even a valid one, does not verify the
// issuer's certificate, and the system roots are not added to it.
func TestVerifyTrustsOnlyIssuerCA(t *testing.T) {
	is := newIssuer(t)
	otherCA := selfSignedCA(t)
	pol := githubPolicy(is)
	pol.IssuerCA = otherCA
	_, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), is.githubClaims()), pol, now, true)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !isIssuer(err) || !ok {
		t.Fatalf("Verify(issuer_ca of another CA) = %v, want *IssuerError wrapping x509.UnknownAuthorityError", err)
	}
	// Both CAs in the file: the issuer's is among them.
	pol.IssuerCA = append(otherCA, is.caPEM()...)
	if _, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), is.githubClaims()), pol, now, true); err != nil {
		t.Fatalf("Verify(issuer_ca bundle holding the issuer's CA) = %v, want nil", err)
	}
}

// selfSignedCA is a CA certificate of a key of its own, PEM-encoded.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestVerifyRefusesMalformedIssuerCA(t *testing.T) {
	is := newIssuer(t)
	for name, ca := range map[string]string{
		"not PEM":     "just text\n",
		"private key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"bad cert":    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"trailing":    string(is.caPEM()) + "trailing garbage\n",
	} {
		pol := githubPolicy(is)
		pol.IssuerCA = []byte(ca)
		_, err := Verify(t.Context(), GitHub, mint(t, issuerKey(), is.githubClaims()), pol, now, true)
		if !isPolicy("issuer_ca")(err) {
			t.Errorf("Verify(issuer_ca %s) = %v, want *PolicyError for issuer_ca", name, err)
		}
	}
}

// The fetch never goes through a proxy the environment names, even one whose CA the
// policy trusts: the proxy sees no request, and the issuer's host is dialled directly.
func TestVerifyIgnoresEnvironmentProxy(t *testing.T) {
	is := newIssuer(t)
	var connects atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				connects.Add(1)
				if req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
					return
				}
				// Tunnel to the issuer, as a proxy in front of it would.
				up, err := net.Dial("tcp", is.srv.Listener.Addr().String())
				if err != nil {
					return
				}
				defer up.Close()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	proxy := "http://" + ln.Addr().String()
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"} {
		t.Setenv(v, proxy)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	// A host name that does not resolve: only a proxy could reach it.
	const issuer = "https://oidc.groundzero.invalid"
	pol := githubPolicy(is)
	pol.Issuer = issuer
	claims := is.githubClaims()
	claims["iss"] = issuer
	_, err = Verify(t.Context(), GitHub, mint(t, issuerKey(), claims), pol, now, true)
	if !isIssuer(err) {
		t.Fatalf("Verify(issuer reachable only through the environment's proxy) = %v, want *IssuerError", err)
	}
	if !strings.Contains(err.Error(), "oidc.groundzero.invalid") {
		t.Errorf("Verify() error %q does not name the issuer", err)
	}
	if n := connects.Load(); n != 0 {
		t.Fatalf("the environment's proxy received %d request(s), want 0", n)
	}
}
