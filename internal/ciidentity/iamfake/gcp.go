package iamfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// GCP is Google's IAM (Workload Identity pools, providers, service
// accounts and their IAM policies), Cloud Storage's bucket IAM and the
// OAuth 2.0 token endpoint, for clients that reach them at their own host
// names through an Interceptor (Hosts). It keeps what it is sent, answers
// every IAM or Storage request only with the access token its token
// endpoint issued, and logs each request.
type GCP struct {
	token string

	mu       sync.Mutex
	requests []GCPRequest
	problems []string
	objects  map[string]map[string]any // pools, providers, service accounts, by resource name
	policies map[string]map[string]any // resource name → IAM policy
}

// GCPRequest is one request the fake received.
type GCPRequest struct {
	Host, Method, Path string
	Status             int
	UploadID           string // X-GUploader-UploadID answered (Cloud Storage)
	Body               []byte
}

// StartGCP makes a fake Google Cloud whose token endpoint issues token.
func StartGCP(token string) *GCP {
	return &GCP{token: token, objects: map[string]map[string]any{}, policies: map[string]map[string]any{}}
}

// Hosts are the host names the fake serves, for Intercept.
func (g *GCP) Hosts() map[string]http.Handler {
	return map[string]http.Handler{
		"iam.googleapis.com":     http.HandlerFunc(g.iam),
		"storage.googleapis.com": http.HandlerFunc(g.storage),
		"oauth2.googleapis.com":  http.HandlerFunc(g.oauth),
	}
}

// Requests returns the requests received, in order.
func (g *GCP) Requests() []GCPRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.requests)
}

// Problems returns what the fake refused or did not expect.
func (g *GCP) Problems() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.problems)
}

// Object returns a pool, provider or service account by resource name, as
// JSON.
func (g *GCP) Object(name string) ([]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.objects[name]
	if !ok {
		return nil, false
	}
	b, _ := json.Marshal(o)
	return b, true
}

// Bindings lists the IAM policy of resource as "ROLE MEMBER [CONDITION]",
// sorted.
func (g *GCP) Bindings(resource string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	bs, _ := g.policy(resource)["bindings"].([]any)
	for _, b := range bs {
		m, _ := b.(map[string]any)
		cond := ""
		if c, ok := m["condition"].(map[string]any); ok {
			cond = fmt.Sprintf(" [%v]", c["expression"])
		}
		ms, _ := m["members"].([]any)
		for _, mem := range ms {
			out = append(out, fmt.Sprintf("%v %v%s", m["role"], mem, cond))
		}
	}
	slices.Sort(out)
	return out
}

// Grant adds member to role on resource without a condition, as someone
// holding setIamPolicy on it could.
func (g *GCP) Grant(resource, role, member string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.policy(resource)
	bs, _ := p["bindings"].([]any)
	p["bindings"] = append(bs, map[string]any{"role": role, "members": []any{member}})
	p["etag"] = fmt.Sprintf("etag-grant-%d", len(g.requests))
	p["version"] = float64(3)
	g.policies[resource] = p
}

func (g *GCP) policy(res string) map[string]any {
	if p, ok := g.policies[res]; ok {
		return p
	}
	return map[string]any{"etag": "BwE=", "version": float64(1)}
}

func (g *GCP) problem(format string, args ...any) {
	g.problems = append(g.problems, fmt.Sprintf(format, args...))
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) int {
	reply(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": 404, "message": "not found", "status": "NOT_FOUND"}})
	return http.StatusNotFound
}

// begin reads a request, logs it and checks its access token; it returns
// the JSON body, or false when the request was refused.
func (g *GCP) begin(w http.ResponseWriter, r *http.Request) (*GCPRequest, map[string]any, bool) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	g.requests = append(g.requests, GCPRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Status: http.StatusOK, Body: body})
	req := &g.requests[len(g.requests)-1]
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		g.problem("%s %s%s without the issued access token", r.Method, r.Host, r.URL.Path)
		req.Status = http.StatusUnauthorized
		reply(w, req.Status, map[string]any{"error": map[string]any{"code": 401, "message": "no valid token", "status": "UNAUTHENTICATED"}})
		return req, nil, false
	}
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			g.problem("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		}
	}
	return req, in, true
}

// oauth issues the token for any refresh-token grant.
func (g *GCP) oauth(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	g.requests = append(g.requests, GCPRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Status: http.StatusOK})
	if v, _ := url.ParseQuery(string(body)); r.URL.Path != "/token" || v.Get("grant_type") != "refresh_token" {
		g.problem("token request %s %s %q", r.Method, r.URL.Path, v.Get("grant_type"))
		reply(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	reply(w, http.StatusOK, map[string]any{"access_token": g.token, "token_type": "Bearer", "expires_in": 3600})
}

// storage serves a bucket's IAM policy.
func (g *GCP) storage(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	req, in, ok := g.begin(w, r)
	if !ok {
		return
	}
	req.UploadID = fmt.Sprintf("gcpfake-upload-%04d", len(g.requests))
	w.Header().Set("X-Guploader-Uploadid", req.UploadID)
	bucket, isIAM := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/storage/v1/b/"), "/iam")
	if !isIAM || !strings.HasPrefix(r.URL.Path, "/storage/v1/b/") {
		g.problem("Cloud Storage %s %s is not served", r.Method, r.URL.Path)
		req.Status = notFound(w)
		return
	}
	res := "projects/_/buckets/" + bucket
	switch r.Method {
	case http.MethodGet:
		if r.URL.Query().Get("optionsRequestedPolicyVersion") != "3" {
			g.problem("bucket getIamPolicy without policy version 3: conditions would be lost")
		}
		reply(w, http.StatusOK, g.policy(res))
	case http.MethodPut:
		g.setPolicy(res, in)
		reply(w, http.StatusOK, in)
	default:
		g.problem("Cloud Storage %s %s is not served", r.Method, r.URL.Path)
		req.Status = notFound(w)
	}
}

func (g *GCP) setPolicy(res string, p map[string]any) {
	if old := g.policy(res); old["etag"] != p["etag"] {
		g.problem("setIamPolicy %s with etag %v, want the one read, %v", res, p["etag"], old["etag"])
	}
	if v, _ := p["version"].(float64); v != 3 {
		g.problem("setIamPolicy %s version %v, want 3", res, p["version"])
	}
	p["etag"] = fmt.Sprintf("etag-%d", len(g.requests))
	g.policies[res] = p
}

// iam serves Workload Identity pools and providers, service accounts and
// their IAM policies.
func (g *GCP) iam(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	req, in, ok := g.begin(w, r)
	if !ok {
		return
	}
	p := r.URL.Path
	name := strings.TrimPrefix(p, "/v1/")
	q := r.URL.Query()
	switch {
	case strings.HasSuffix(p, ":getIamPolicy"):
		res := strings.TrimSuffix(name, ":getIamPolicy")
		if v := q.Get("options.requestedPolicyVersion"); v != "3" {
			g.problem("%s getIamPolicy: requested policy version %q, want 3", res, v)
		}
		if _, ok := g.objects[res]; !ok {
			req.Status = notFound(w)
			return
		}
		reply(w, http.StatusOK, g.policy(res))
	case strings.HasSuffix(p, ":setIamPolicy"):
		res := strings.TrimSuffix(name, ":setIamPolicy")
		pol, _ := in["policy"].(map[string]any)
		if _, ok := g.objects[res]; !ok || pol == nil {
			req.Status = notFound(w)
			return
		}
		g.setPolicy(res, pol)
		reply(w, http.StatusOK, pol)
	case r.Method == http.MethodGet:
		if o, ok := g.objects[name]; ok {
			reply(w, http.StatusOK, o)
		} else {
			req.Status = notFound(w)
		}
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/workloadIdentityPools"):
		g.create(w, req, name+"/"+q.Get("workloadIdentityPoolId"), in)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/providers"):
		if _, ok := g.objects[strings.TrimSuffix(name, "/providers")]; !ok {
			req.Status = notFound(w)
			return
		}
		g.create(w, req, name+"/"+q.Get("workloadIdentityPoolProviderId"), in)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/serviceAccounts"):
		id, _ := in["accountId"].(string)
		project := strings.TrimSuffix(strings.TrimPrefix(name, "projects/"), "/serviceAccounts")
		email := id + "@" + project + ".iam.gserviceaccount.com"
		res := "projects/" + project + "/serviceAccounts/" + email
		if _, ok := g.objects[res]; ok {
			req.Status = http.StatusConflict
			reply(w, req.Status, map[string]any{"error": map[string]any{"code": 409, "message": "exists", "status": "ALREADY_EXISTS"}})
			return
		}
		sa, _ := in["serviceAccount"].(map[string]any)
		if sa == nil {
			sa = map[string]any{}
		}
		sa["name"], sa["email"], sa["projectId"] = res, email, project
		g.objects[res] = sa
		reply(w, http.StatusOK, sa)
	default:
		g.problem("IAM %s %s is not served", r.Method, p)
		req.Status = notFound(w)
	}
}

// create makes a pool or provider, answering with a finished operation.
func (g *GCP) create(w http.ResponseWriter, req *GCPRequest, name string, in map[string]any) {
	if _, ok := g.objects[name]; ok || in == nil {
		req.Status = http.StatusConflict
		reply(w, req.Status, map[string]any{"error": map[string]any{"code": 409, "message": "exists", "status": "ALREADY_EXISTS"}})
		return
	}
	in["name"], in["state"] = name, "ACTIVE"
	g.objects[name] = in
	reply(w, http.StatusOK, map[string]any{"name": name + "/operations/op-" + fmt.Sprint(len(g.requests)), "done": true})
}
