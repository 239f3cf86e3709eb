package cicred

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/groundzero/groundzero/internal/backend"
)

// ServiceSpaces is the Call.Service of the Spaces key calls.
const ServiceSpaces = "spaces-keys"

// Spaces makes CI keys as DigitalOcean Spaces access keys over godo's
// SpacesKeys service. Spaces keys are granted per bucket (read or
// readwrite), not per prefix: a plan key may read the whole state bucket
// and an apply key write it, so each environment wants its own bucket
// where the prefix matters. Grant says so, and Scope records it.
type Spaces struct {
	client *godo.Client
}

// SpacesOptions are what NewSpaces needs.
type SpacesOptions struct {
	Token string // DIGITALOCEAN_TOKEN
	// BaseURL is the API, "" for https://api.digitalocean.com/.
	BaseURL    string
	HTTPClient *http.Client
}

// String prints the options without the token.
func (o SpacesOptions) String() string {
	return fmt.Sprintf("cicred.SpacesOptions{Token:%s, BaseURL:%q}", redacted, o.BaseURL)
}

// GoString prints as String does.
func (o SpacesOptions) GoString() string { return o.String() }

// bearer adds the API token to each request and nothing else.
type bearer struct {
	token Secret
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b.token))
	return b.next.RoundTrip(r)
}

// NewSpaces returns the Spaces key service opt names.
func NewSpaces(opt SpacesOptions) (*Spaces, error) {
	if opt.Token == "" {
		return nil, errors.New("spaces: no API token (DIGITALOCEAN_TOKEN)")
	}
	hc := &http.Client{}
	if opt.HTTPClient != nil {
		c := *opt.HTTPClient
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &bearer{token: Secret(opt.Token), next: next}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var opts []godo.ClientOpt
	if opt.BaseURL != "" {
		opts = append(opts, godo.SetBaseURL(opt.BaseURL))
	}
	c, err := godo.New(hc, opts...)
	if err != nil {
		return nil, fmt.Errorf("spaces: %v", err)
	}
	return &Spaces{client: c}, nil
}

// Name is "spaces".
func (s *Spaces) Name() string { return "spaces" }

// SpacesGrants are the grants a key of scope gets.
func SpacesGrants(s Scope) []*godo.Grant {
	perm := godo.SpacesKeyRead
	if s.Role == RoleApply {
		perm = godo.SpacesKeyReadWrite
	}
	return []*godo.Grant{{Bucket: s.Bucket, Permission: perm}}
}

// Grant describes the grants.
func (s *Spaces) Grant(sc Scope) (string, error) {
	var parts []string
	for _, g := range SpacesGrants(sc) {
		parts = append(parts, fmt.Sprintf("%s on bucket %s", g.Permission, g.Bucket))
	}
	return strings.Join(parts, ", ") + " (Spaces grants are per bucket: the key reaches every prefix in it)", nil
}

// Create makes a Spaces key with the scope's grants.
func (s *Spaces) Create(ctx context.Context, sc Scope) (Key, []backend.Call, error) {
	k, c, err := s.create(ctx, sc)
	return k, []backend.Call{c}, err
}

func (s *Spaces) create(ctx context.Context, sc Scope) (Key, backend.Call, error) {
	name := ServiceAccountName(sc)
	call := backend.Call{Service: ServiceSpaces, Operation: "create-key", Resource: name, Outcome: "failed"}
	k, resp, err := s.client.SpacesKeys.Create(ctx, &godo.SpacesKeyCreateRequest{Name: name, Grants: SpacesGrants(sc)})
	call.RequestID = doRequestID(resp, err)
	if err != nil {
		return Key{}, call, fmt.Errorf("spaces: create key %s: %s", name, doError(err))
	}
	if k == nil || k.AccessKey == "" || k.SecretKey == "" {
		return Key{}, call, fmt.Errorf("spaces: create key %s: the answer carries no key", name)
	}
	call.Outcome, call.Resource = "created", k.AccessKey
	return Key{ID: k.AccessKey, Secret: Secret(k.SecretKey)}, call, nil
}

// Delete deletes the Spaces key id.
func (s *Spaces) Delete(ctx context.Context, _ Scope, id string) (backend.Call, error) {
	call := backend.Call{Service: ServiceSpaces, Operation: "delete-key", Resource: id, Outcome: "failed"}
	resp, err := s.client.SpacesKeys.Delete(ctx, id)
	call.RequestID = doRequestID(resp, err)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		call.Outcome = "missing"
		return call, nil
	}
	if err != nil {
		return call, fmt.Errorf("spaces: delete key %s: %s", id, doError(err))
	}
	call.Outcome = "deleted"
	return call, nil
}

func doRequestID(resp *godo.Response, err error) string {
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.RequestID != "" {
		return er.RequestID
	}
	if resp != nil && resp.Response != nil {
		return resp.Header.Get("X-Request-Id")
	}
	return ""
}

// doError is the API's message without the request URL's query or any
// header.
func doError(err error) string {
	var er *godo.ErrorResponse
	if errors.As(err, &er) {
		status := 0
		if er.Response != nil {
			status = er.Response.StatusCode
		}
		return fmt.Sprintf("status %d: %s", status, scrubText(er.Message, ""))
	}
	return scrubText(err.Error(), "")
}
