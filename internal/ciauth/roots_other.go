//go:build !unix || darwin

package ciauth

import "crypto/x509"

// systemRoots returns the platform's trust store. On macOS and Windows, Go verifies with
// the platform's own verifier and consults no environment variable.
func systemRoots() (*x509.CertPool, error) { return x509.SystemCertPool() }
