// Package oci provisions and verifies the Oracle Cloud pieces of backend
// kind oci over the official OCI Go SDK: the OCI Vault key that encrypts the
// bucket (key provider oci_vault), made through the vault's management
// endpoint, and the Object Storage bucket itself, made through the native
// Object Storage API with versioning, the key, no public access and the
// spec's freeform tags given at creation. OpenTofu reaches the bucket
// through the S3-compatible endpoint; that is the s3 package's concern.
//
// Identifiers are OCIDs. Every call is recorded with the opc-request-id OCI
// answered with. The signing key inside the configuration provider never
// reaches a Call, a Finding, an error or a log line: Options, Keys and
// Buckets print and log without it.
package oci

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/common"
)

// Services named in Call.Service.
const (
	ServiceKMS           = "oci-kms"
	ServiceObjectStorage = "objectstorage"
)

// Options are what NewKeys and NewBuckets need beyond the spec.
type Options struct {
	// ConfigProvider signs the requests (an API key, instance or resource
	// principal); it also gives the region when the spec has none.
	ConfigProvider common.ConfigurationProvider
	// ManagementEndpoint is the vault's management endpoint; "" for
	// spec.Key.Address.
	ManagementEndpoint string
	// ObjectStorageEndpoint is the native Object Storage endpoint; "" for
	// the region's own.
	ObjectStorageEndpoint string
	// HTTPClient carries the requests; nil for the SDK's own.
	HTTPClient *http.Client
}

// String prints the options without the configuration provider, which
// holds the signing key.
func (o Options) String() string {
	p := "nil"
	if o.ConfigProvider != nil {
		p = "REDACTED"
	}
	return fmt.Sprintf("oci.Options{ConfigProvider:%s, ManagementEndpoint:%q, ObjectStorageEndpoint:%q}", p, o.ManagementEndpoint, o.ObjectStorageEndpoint)
}

// GoString prints the options as String does.
func (o Options) GoString() string { return o.String() }

// LogValue logs the endpoints only.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("management_endpoint", o.ManagementEndpoint), slog.String("object_storage_endpoint", o.ObjectStorageEndpoint))
}

// endpoint checks a service endpoint: https, or http on a loopback address.
func endpoint(what, s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("oci: %s %q is not an endpoint URL (https://HOST[:PORT])", what, s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		return "", fmt.Errorf("oci: %s %q must be https (http only on a loopback address)", what, s)
	}
	return u.Scheme + "://" + u.Host, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// notFound reports whether OCI answered 404 (which it also answers for a
// resource the caller may not see).
func notFound(err error) bool {
	se, ok := common.IsServiceError(err)
	return ok && se.GetHTTPStatusCode() == http.StatusNotFound
}

// conflict reports whether OCI answered 409 with the code given.
func conflict(err error, code string) bool {
	se, ok := common.IsServiceError(err)
	return ok && se.GetHTTPStatusCode() == http.StatusConflict && se.GetCode() == code
}

// fail words an SDK error on one line: the service's status, code, message
// and request ID, or the transport error, wrapped.
func fail(service, op, resource string, err error) error {
	if se, ok := common.IsServiceError(err); ok {
		return fmt.Errorf("%s: %s %s: %d %s: %s (opc-request-id %s)", service, op, resource,
			se.GetHTTPStatusCode(), se.GetCode(), oneLine(se.GetMessage()), se.GetOpcRequestID())
	}
	return fmt.Errorf("%s: %s %s: %w", service, op, resource, err)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	return s
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

var errNoProvider = errors.New("oci: no configuration provider (API key, instance or resource principal)")
