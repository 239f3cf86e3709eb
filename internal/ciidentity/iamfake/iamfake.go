// Package iamfake holds the cloud control planes of the CI identities on
// 127.0.0.1, for tests that cannot reach them.
//
// [Server] is AWS IAM: an httptest server speaking IAM's query protocol for
// the operations package ciidentity uses, and those someone with IAM rights
// would use to change a role behind groundzero's back
// (UpdateAssumeRolePolicy, PutRolePolicy). It refuses requests not signed
// with SigV4 for IAM in us-east-1 by the expected access key, keeps every
// request with the request ID it answered, and holds the OIDC providers
// and roles it was asked to make, returning documents URL-encoded as IAM
// does. The AWS SDK reaches it through AWS_ENDPOINT_URL_IAM.
//
// [GCP] is Google's IAM, Cloud Storage bucket IAM and OAuth token endpoint.
// Google's clients take no endpoint from the environment, so they reach it
// at Google's own host names through an [Interceptor]: an HTTPS proxy
// (HTTPS_PROXY) that terminates TLS for those hosts only, with a test CA
// the client trusts through SSL_CERT_FILE.
package iamfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Request is one request the server received.
type Request struct {
	Op        string
	Params    url.Values
	RequestID string
	Status    int
}

// Writes reports whether the request asks IAM to change something.
func (r Request) Writes() bool {
	for _, p := range []string{"Create", "Put", "Attach", "Update", "Delete", "Detach", "Add", "Remove", "Tag", "Untag"} {
		if strings.HasPrefix(r.Op, p) {
			return true
		}
	}
	return false
}

// Provider is an IAM OIDC provider.
type Provider struct {
	ARN       string
	URL       string // as created, with its scheme
	Audiences []string
}

// Role is an IAM role. Trust and the inline policies are the documents as
// they were sent (JSON).
type Role struct {
	Name     string
	ARN      string
	Trust    string
	Inline   map[string]string
	Attached []string
}

// Server is a running fake IAM.
type Server struct {
	URL string

	account, accessKey string
	srv                *httptest.Server

	mu       sync.Mutex
	requests []Request
	problems []string
	provs    map[string]*Provider // by ARN
	roles    map[string]*Role     // by name
	fails    map[string]int       // operation -> status it is refused with
	pageSize int                  // > 0: ListAttachedRolePolicies pages
}

// Start runs a fake IAM for account that accepts requests signed by
// accessKey; Close stops it.
func Start(account, accessKey string) *Server {
	s := &Server{account: account, accessKey: accessKey, provs: map[string]*Provider{}, roles: map[string]*Role{}, fails: map[string]int{}}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests returns the requests received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Problems returns what the server refused or did not expect: unsigned or
// wrongly scoped requests, unknown operations, malformed parameters.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// Providers returns the OIDC providers, sorted by ARN.
func (s *Server) Providers() []Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Provider
	for _, p := range s.provs {
		c := *p
		c.Audiences = slices.Clone(p.Audiences)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Provider) int { return strings.Compare(a.ARN, b.ARN) })
	return out
}

// Role returns the role called name.
func (s *Server) Role(name string) (Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[name]
	if !ok {
		return Role{}, false
	}
	c := *r
	c.Inline = map[string]string{}
	for k, v := range r.Inline {
		c.Inline[k] = v
	}
	c.Attached = slices.Clone(r.Attached)
	return c, true
}

// RoleNames returns the names of the roles, sorted.
func (s *Server) RoleNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.roles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Refuse makes every later request of operation op answer status with
// AccessDenied.
func (s *Server) Refuse(op string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[op] = status
}

// PageSize makes ListAttachedRolePolicies answer n policies a page, with a
// Marker for the next (0: all on one page).
func (s *Server) PageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Change edits the providers (by ARN) and roles (by name) in place, as
// someone with IAM rights could; documents are JSON, as sent.
func (s *Server) Change(edit func(provs map[string]*Provider, roles map[string]*Role)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s.provs, s.roles)
}

const ns = "https://iam.amazonaws.com/doc/2010-05-08/"

func (s *Server) problem(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// ServeHTTP answers one IAM request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	v, err := url.ParseQuery(string(body))
	id := fmt.Sprintf("iamfake-%04d", len(s.requests)+1)
	req := Request{Op: v.Get("Action"), Params: v, RequestID: id, Status: http.StatusOK}
	w.Header().Set("X-Amzn-Requestid", id)
	w.Header().Set("Content-Type", "text/xml")
	fail := func(status int, code, msg string) {
		req.Status = status
		s.requests = append(s.requests, req)
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, ns, code, esc(msg), id)
	}
	if err != nil || r.Method != http.MethodPost || v.Get("Version") != "2010-05-08" {
		s.problem("%s %s: not an IAM query-protocol POST (Version %q)", r.Method, r.URL, v.Get("Version"))
		fail(http.StatusBadRequest, "MalformedQueryString", "not a query-protocol request")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+s.accessKey+"/") || !strings.Contains(auth, "/us-east-1/iam/aws4_request") {
		s.problem("%s: Authorization %q is not SigV4 by %s for us-east-1/iam", req.Op, redact(auth), s.accessKey)
		fail(http.StatusForbidden, "SignatureDoesNotMatch", "not signed for IAM")
		return
	}
	if st := s.fails[req.Op]; st != 0 {
		fail(st, "AccessDenied", "User is not authorized to perform iam:"+req.Op)
		return
	}
	name := v.Get("RoleName")
	role := s.roles[name]
	if role == nil && name != "" && req.Op != "CreateRole" {
		fail(http.StatusNotFound, "NoSuchEntity", "The role with name "+name+" cannot be found.")
		return
	}
	result := ""
	switch req.Op {
	case "GetOpenIDConnectProvider":
		p := s.provs[v.Get("OpenIDConnectProviderArn")]
		if p == nil {
			fail(http.StatusNotFound, "NoSuchEntity", "OpenIDConnect Provider not found for arn "+v.Get("OpenIDConnectProviderArn"))
			return
		}
		result = "<Url>" + esc(strings.TrimPrefix(p.URL, "https://")) + "</Url><ClientIDList>" + members(p.Audiences) + "</ClientIDList><ThumbprintList/>"
	case "CreateOpenIDConnectProvider":
		u := v.Get("Url")
		if !strings.HasPrefix(u, "https://") {
			fail(http.StatusBadRequest, "ValidationError", "Url must begin with https://")
			return
		}
		arn := "arn:aws:iam::" + s.account + ":oidc-provider/" + strings.TrimPrefix(u, "https://")
		if s.provs[arn] != nil {
			fail(http.StatusConflict, "EntityAlreadyExists", "Provider with url "+u+" already exists.")
			return
		}
		s.provs[arn] = &Provider{ARN: arn, URL: u, Audiences: list(v, "ClientIDList")}
		result = "<OpenIDConnectProviderArn>" + esc(arn) + "</OpenIDConnectProviderArn>"
	case "GetRole":
		result = roleXML(role)
	case "CreateRole":
		if role != nil {
			fail(http.StatusConflict, "EntityAlreadyExists", "Role with name "+name+" already exists.")
			return
		}
		role = &Role{Name: name, ARN: "arn:aws:iam::" + s.account + ":role/" + name, Trust: v.Get("AssumeRolePolicyDocument"), Inline: map[string]string{}}
		s.roles[name] = role
		result = roleXML(role)
	case "UpdateAssumeRolePolicy":
		role.Trust = v.Get("PolicyDocument")
	case "ListRolePolicies":
		var names []string
		for n := range role.Inline {
			names = append(names, n)
		}
		slices.Sort(names)
		result = "<PolicyNames>" + members(names) + "</PolicyNames><IsTruncated>false</IsTruncated>"
	case "GetRolePolicy":
		doc, ok := role.Inline[v.Get("PolicyName")]
		if !ok {
			fail(http.StatusNotFound, "NoSuchEntity", "The role policy with name "+v.Get("PolicyName")+" cannot be found.")
			return
		}
		result = "<RoleName>" + esc(name) + "</RoleName><PolicyName>" + esc(v.Get("PolicyName")) + "</PolicyName><PolicyDocument>" + esc(url.QueryEscape(doc)) + "</PolicyDocument>"
	case "PutRolePolicy":
		role.Inline[v.Get("PolicyName")] = v.Get("PolicyDocument")
	case "ListAttachedRolePolicies":
		page, next := role.Attached, 0
		if s.pageSize > 0 {
			start, _ := strconv.Atoi(v.Get("Marker"))
			page = page[min(max(start, 0), len(page)):]
			if len(page) > s.pageSize {
				page, next = page[:s.pageSize], start+s.pageSize
			}
		}
		var b strings.Builder
		for _, a := range page {
			b.WriteString("<member><PolicyName>" + esc(a[strings.LastIndex(a, "/")+1:]) + "</PolicyName><PolicyArn>" + esc(a) + "</PolicyArn></member>")
		}
		result = "<AttachedPolicies>" + b.String() + "</AttachedPolicies><IsTruncated>false</IsTruncated>"
		if next > 0 {
			result = "<AttachedPolicies>" + b.String() + "</AttachedPolicies><IsTruncated>true</IsTruncated><Marker>" + strconv.Itoa(next) + "</Marker>"
		}
	case "AttachRolePolicy":
		if !slices.Contains(role.Attached, v.Get("PolicyArn")) {
			role.Attached = append(role.Attached, v.Get("PolicyArn"))
		}
	default:
		s.problem("IAM operation %q is not served", req.Op)
		fail(http.StatusBadRequest, "InvalidAction", "operation "+req.Op+" is not served")
		return
	}
	s.requests = append(s.requests, req)
	fmt.Fprintf(w, `<%[1]sResponse xmlns="%[2]s"><%[1]sResult>%[3]s</%[1]sResult><ResponseMetadata><RequestId>%[4]s</RequestId></ResponseMetadata></%[1]sResponse>`, req.Op, ns, result, id)
}

// redact keeps an Authorization header's credential scope and drops its
// signature.
func redact(auth string) string {
	if i := strings.Index(auth, "Signature="); i >= 0 {
		return auth[:i] + "Signature=..."
	}
	return auth
}

// list reads the query protocol's NAME.member.N parameters.
func list(v url.Values, name string) []string {
	var out []string
	for i := 1; v.Has(fmt.Sprintf("%s.member.%d", name, i)); i++ {
		out = append(out, v.Get(fmt.Sprintf("%s.member.%d", name, i)))
	}
	return out
}

// roleXML is a role as GetRole returns it: the trust policy URL-encoded.
func roleXML(r *Role) string {
	return "<Role><Path>/</Path><RoleName>" + esc(r.Name) + "</RoleName><RoleId>AROAFAKE" + fmt.Sprintf("%08X", len(r.Name)) + "</RoleId><Arn>" + esc(r.ARN) +
		"</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>" + esc(url.QueryEscape(r.Trust)) + "</AssumeRolePolicyDocument></Role>"
}

func members(vs []string) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("<member>" + esc(v) + "</member>")
	}
	return b.String()
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
