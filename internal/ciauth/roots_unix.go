//go:build unix && !darwin

package ciauth

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
)

// systemCertFiles are the CA bundles crypto/x509 knows on Linux and the BSDs; the first
// one that can be read is used.
var systemCertFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine, OpenBSD
	"/usr/local/etc/ssl/cert.pem",                       // FreeBSD
	"/usr/local/share/certs/ca-root-nss.crt",            // DragonFly
	"/etc/openssl/certs/ca-certificates.crt",            // NetBSD
}

// systemCertDirs are read, every file in them, only when no bundle exists.
var systemCertDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs", "/usr/local/share/certs", "/etc/openssl/certs"}

// systemRoots reads the system's CA certificates from their fixed locations. Unlike
// x509.SystemCertPool it does not consult SSL_CERT_FILE or SSL_CERT_DIR, which whoever
// controls the process environment could point at a CA of their own.
func systemRoots() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range systemCertFiles {
		if data, err := os.ReadFile(f); err == nil && pool.AppendCertsFromPEM(data) {
			return pool, nil
		}
	}
	found := false
	for _, d := range systemCertDirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if data, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil && pool.AppendCertsFromPEM(data) {
				found = true
			}
		}
	}
	if !found {
		return nil, errors.New("no system root certificates found (name the issuer's CA in ci.issuer_ca)")
	}
	return pool, nil
}
