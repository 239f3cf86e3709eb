package ciidentity_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// AWS IAM cannot be reached here. fakeIAM is an httptest server that speaks
// IAM's query protocol for the operations the package uses, checks that
// every request is signed for IAM, keeps what it is sent, and answers each
// request with its own request ID.
type fakeIAM struct {
	t  *testing.T
	mu sync.Mutex

	ops  []string             // operations received, in order
	sent []url.Values         // their parameters
	ids  int                  // request IDs answered
	prov *fakeProvider        // the OIDC provider, nil when absent
	role map[string]*fakeRole // by name
	fail map[string]int       // operation -> HTTP status to answer with
	// pageSize > 0 answers ListAttachedRolePolicies that many at a time.
	pageSize int
}

type fakeProvider struct {
	url  string
	auds []string
}

type fakeRole struct {
	trust    string
	inline   map[string]string
	attached []string
}

const account = "111122223333"

func newFakeIAM(t *testing.T) (*fakeIAM, *httptest.Server) {
	f := &fakeIAM{t: t, role: map[string]*fakeRole{}, fail: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// creates lists the operations received that change something.
func (f *fakeIAM) creates() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, op := range f.ops {
		if strings.HasPrefix(op, "Create") || strings.HasPrefix(op, "Put") || strings.HasPrefix(op, "Attach") || strings.HasPrefix(op, "Update") || strings.HasPrefix(op, "Delete") {
			out = append(out, op)
		}
	}
	return out
}

// param returns parameter name of the first request of op.
func (f *fakeIAM) param(op, roleName, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.ops {
		if o == op && (roleName == "" || f.sent[i].Get("RoleName") == roleName) {
			return f.sent[i].Get(name)
		}
	}
	f.t.Fatalf("no %s request for role %q", op, roleName)
	return ""
}

const iamNS = "https://iam.amazonaws.com/doc/2010-05-08/"

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	v, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		f.t.Errorf("IAM request %s %s: not a query-protocol POST", r.Method, r.URL)
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDFAKE/") || !strings.Contains(auth, "/us-east-1/iam/aws4_request") {
		f.t.Errorf("IAM request: Authorization %q, want AKIDFAKE scoped to us-east-1/iam", auth)
	}
	op := v.Get("Action")
	f.ops = append(f.ops, op)
	f.sent = append(f.sent, v)
	f.ids++
	id := fmt.Sprintf("iam-req-%d", f.ids)
	w.Header().Set("X-Amzn-Requestid", id)
	w.Header().Set("Content-Type", "text/xml")
	if st := f.fail[op]; st != 0 {
		f.errorResponse(w, id, st, "AccessDenied")
		return
	}
	result := ""
	role := f.role[v.Get("RoleName")]
	needRole := func() bool {
		if role == nil {
			f.errorResponse(w, id, 404, "NoSuchEntity")
			return false
		}
		return true
	}
	switch op {
	case "GetOpenIDConnectProvider":
		if f.prov == nil || v.Get("OpenIDConnectProviderArn") != "arn:aws:iam::"+account+":oidc-provider/"+strings.TrimPrefix(f.prov.url, "https://") {
			f.errorResponse(w, id, 404, "NoSuchEntity")
			return
		}
		result = "<Url>" + esc(strings.TrimPrefix(f.prov.url, "https://")) + "</Url><ClientIDList>" + members(f.prov.auds) + "</ClientIDList><ThumbprintList/>"
	case "CreateOpenIDConnectProvider":
		f.prov = &fakeProvider{url: v.Get("Url")}
		for i := 1; v.Get(fmt.Sprintf("ClientIDList.member.%d", i)) != ""; i++ {
			f.prov.auds = append(f.prov.auds, v.Get(fmt.Sprintf("ClientIDList.member.%d", i)))
		}
		result = "<OpenIDConnectProviderArn>arn:aws:iam::" + account + ":oidc-provider/" + esc(strings.TrimPrefix(f.prov.url, "https://")) + "</OpenIDConnectProviderArn>"
	case "GetRole":
		if !needRole() {
			return
		}
		result = roleXML(v.Get("RoleName"), role.trust)
	case "CreateRole":
		name := v.Get("RoleName")
		f.role[name] = &fakeRole{trust: url.QueryEscape(v.Get("AssumeRolePolicyDocument")), inline: map[string]string{}}
		result = roleXML(name, f.role[name].trust)
	case "ListRolePolicies":
		if !needRole() {
			return
		}
		var names []string
		for n := range role.inline {
			names = append(names, n)
		}
		slices.Sort(names)
		result = "<PolicyNames>" + members(names) + "</PolicyNames><IsTruncated>false</IsTruncated>"
	case "GetRolePolicy":
		if !needRole() {
			return
		}
		doc, ok := role.inline[v.Get("PolicyName")]
		if !ok {
			f.errorResponse(w, id, 404, "NoSuchEntity")
			return
		}
		result = "<RoleName>" + esc(v.Get("RoleName")) + "</RoleName><PolicyName>" + esc(v.Get("PolicyName")) + "</PolicyName><PolicyDocument>" + esc(doc) + "</PolicyDocument>"
	case "PutRolePolicy":
		if !needRole() {
			return
		}
		role.inline[v.Get("PolicyName")] = url.QueryEscape(v.Get("PolicyDocument"))
	case "ListAttachedRolePolicies":
		if !needRole() {
			return
		}
		var b strings.Builder
		list, more := role.attached, ""
		if f.pageSize > 0 {
			start := 0
			fmt.Sscan(v.Get("Marker"), &start)
			list = list[min(start, len(list)):]
			if len(list) > f.pageSize {
				list, more = list[:f.pageSize], fmt.Sprint(start+f.pageSize)
			}
		}
		if more != "" {
			var items strings.Builder
			for _, a := range list {
				items.WriteString("<member><PolicyName>" + esc(a[strings.LastIndex(a, "/")+1:]) + "</PolicyName><PolicyArn>" + esc(a) + "</PolicyArn></member>")
			}
			result = "<AttachedPolicies>" + items.String() + "</AttachedPolicies><IsTruncated>true</IsTruncated><Marker>" + more + "</Marker>"
			break
		}
		for _, a := range list {
			b.WriteString("<member><PolicyName>" + esc(a[strings.LastIndex(a, "/")+1:]) + "</PolicyName><PolicyArn>" + esc(a) + "</PolicyArn></member>")
		}
		result = "<AttachedPolicies>" + b.String() + "</AttachedPolicies><IsTruncated>false</IsTruncated>"
	case "AttachRolePolicy":
		if !needRole() {
			return
		}
		role.attached = append(role.attached, v.Get("PolicyArn"))
	default:
		f.t.Errorf("IAM operation %s is not expected", op)
		f.errorResponse(w, id, 400, "InvalidAction")
		return
	}
	fmt.Fprintf(w, `<%[1]sResponse xmlns="%[2]s"><%[1]sResult>%[3]s</%[1]sResult><ResponseMetadata><RequestId>%[4]s</RequestId></ResponseMetadata></%[1]sResponse>`, op, iamNS, result, id)
}

func (f *fakeIAM) errorResponse(w http.ResponseWriter, id string, status int, code string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>fake</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, iamNS, code, id)
}

func roleXML(name, trust string) string {
	return "<Role><Path>/</Path><RoleName>" + esc(name) + "</RoleName><RoleId>AROAFAKE</RoleId><Arn>arn:aws:iam::" + account + ":role/" + esc(name) +
		"</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>" + esc(trust) + "</AssumeRolePolicyDocument></Role>"
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
