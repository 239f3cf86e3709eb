package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/ciidentity"
	"github.com/groundzero/groundzero/internal/ciidentity/iamfake"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// AWS's control planes for the CI identities end to end: IAM
// (internal/ciidentity/iamfake), KMS and STS, and the S3 bucket settings the
// gateway does not implement (default encryption, public access block) on
// 127.0.0.1, in front of the real S3 gateway, which keeps serving every
// object request.
func init() {
	commands["awsfake"] = cmdAWSFake
	commands["awsfakeclean"] = cmdAWSFakeClean
	commands["iamcheck"] = cmdIAMCheck
	commands["iammark"] = cmdIAMMark
	commands["iamlog"] = cmdIAMLog
	commands["iamwiden"] = cmdIAMWiden
	commands["iamrole"] = cmdIAMRole
	commands["gcpfake"] = cmdGCPFake
	commands["gcpcheck"] = cmdGCPCheck
	commands["gcplog"] = cmdGCPLog
	commands["gcpgrant"] = cmdGCPGrant
}

const (
	ciAccount = "111122223333"
	ciKeyARN  = "arn:aws:kms:us-east-1:" + ciAccount + ":key/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"
)

// awsFake is one script's fakes.
type awsFake struct {
	iam  *iamfake.Server
	kms  *kmsSTS
	ctl  *s3Control
	mark int // iammark: requests before it are not listed by iamlog
}

var awsFakes sync.Map // *testscript.TestScript → *awsFake

func fakesOf(ts *testscript.TestScript, usage string) *awsFake {
	v, _ := awsFakes.Load(ts)
	f, _ := v.(*awsFake)
	if f == nil {
		ts.Fatalf("usage: %s (after awsfake)", usage)
	}
	return f
}

// awsfake starts, for the rest of the script, a fake IAM, a fake KMS and
// STS, and a proxy in front of the script's S3 gateway that serves the
// bucket settings AWS has and the gateway lacks. It sets
// AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL_STS, the
// variables the AWS SDK reads, and $S3_AWS_ENDPOINT, the proxy. A request
// not signed by the gateway's access key for its service in us-east-1 is
// a problem awsfakeclean reports; IAM also refuses it.
func cmdAWSFake(ts *testscript.TestScript, neg bool, args []string) {
	v, _ := gateways.Load(ts)
	g, _ := v.(*s3gateway.Gateway)
	if neg || len(args) != 0 || g == nil {
		ts.Fatalf("usage: awsfake (after s3gateway)")
	}
	f := &awsFake{iam: iamfake.Start(ciAccount, s3gateway.AccessKey), kms: &kmsSTS{}, ctl: &s3Control{settings: map[string][]byte{}}}
	ts.Defer(f.iam.Close)
	kmsSrv := serve(ts, f.kms)
	target, err := url.Parse(g.Endpoint)
	ts.Check(err)
	f.ctl.gateway = httputil.NewSingleHostReverseProxy(target)
	ctlSrv := serve(ts, f.ctl)
	awsFakes.Store(ts, f)
	ts.Setenv("AWS_ENDPOINT_URL_IAM", f.iam.URL)
	ts.Setenv("AWS_ENDPOINT_URL_KMS", kmsSrv)
	ts.Setenv("AWS_ENDPOINT_URL_STS", kmsSrv)
	ts.Setenv("S3_AWS_ENDPOINT", ctlSrv)
}

func serve(ts *testscript.TestScript, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	ts.Defer(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// signedFor reports whether a request carries a SigV4 signature by the
// gateway's access key for service in us-east-1.
func signedFor(r *http.Request, service string) bool {
	auth := r.Header.Get("Authorization")
	return strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+s3gateway.AccessKey+"/") && strings.Contains(auth, "/us-east-1/"+service+"/aws4_request")
}

// kmsSTS serves KMS (one symmetric key, made by CreateKey) and STS's
// GetCallerIdentity.
type kmsSTS struct {
	mu       sync.Mutex
	n        int
	problems []string
	key      bool
	alias    string
	rotation bool
}

func (k *kmsSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	k.n++
	id := fmt.Sprintf("kmsfake-%04d", k.n)
	w.Header().Set("X-Amzn-Requestid", id)
	if op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService."); ok {
		if !signedFor(r, "kms") {
			k.problems = append(k.problems, "kms:"+op+" is not signed for us-east-1/kms")
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		k.kms(w, op, body)
		return
	}
	if v, _ := url.ParseQuery(string(body)); v.Get("Action") == "GetCallerIdentity" {
		if !signedFor(r, "sts") {
			k.problems = append(k.problems, "sts:GetCallerIdentity is not signed for us-east-1/sts")
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::%s:user/bootstrap</Arn><UserId>AIDAFAKE</UserId><Account>%s</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, ciAccount, ciAccount, id)
		return
	}
	k.problems = append(k.problems, fmt.Sprintf("unexpected request %s %s %q", r.Method, r.URL, body))
	w.WriteHeader(http.StatusBadRequest)
}

func (k *kmsSTS) kms(w http.ResponseWriter, op string, body []byte) {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		k.problems = append(k.problems, fmt.Sprintf("kms:%s body is not JSON: %v", op, err))
	}
	keyID, _ := in["KeyId"].(string)
	meta := map[string]any{"KeyId": ciKeyARN[strings.LastIndex(ciKeyARN, "/")+1:], "Arn": ciKeyARN, "AWSAccountId": ciAccount,
		"KeyState": "Enabled", "Enabled": true, "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
	notFound := func() {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "NotFoundException", "message": keyID + " is not found."})
	}
	switch op {
	case "DescribeKey":
		if !k.key || (keyID != ciKeyARN && keyID != k.alias) {
			notFound()
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": meta})
	case "CreateKey":
		k.key = true
		json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": meta})
	case "CreateAlias":
		k.alias, _ = in["AliasName"].(string)
		if in["TargetKeyId"] != ciKeyARN || !strings.HasPrefix(k.alias, "alias/") {
			k.problems = append(k.problems, fmt.Sprintf("kms:CreateAlias %v", in))
		}
		io.WriteString(w, "{}")
	case "EnableKeyRotation":
		k.rotation = keyID == ciKeyARN
		io.WriteString(w, "{}")
	case "GetKeyRotationStatus":
		if keyID != ciKeyARN {
			notFound()
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"KeyId": ciKeyARN, "KeyRotationEnabled": k.rotation, "RotationPeriodInDays": 365})
	default:
		k.problems = append(k.problems, "kms:"+op+" is not served")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "UnsupportedOperationException", "message": op})
	}
}

// s3Control serves a bucket's default encryption and public access block,
// which AWS S3 has and the gateway answers 501 to, and passes every other
// request to the gateway unchanged (its signature stays valid: the Host
// header is kept).
type s3Control struct {
	gateway  http.Handler
	mu       sync.Mutex
	n        int
	problems []string
	settings map[string][]byte // "BUCKET?encryption" → the configuration put
}

func (c *s3Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bucket := strings.Trim(r.URL.Path, "/")
	var setting string
	for _, s := range []string{"encryption", "publicAccessBlock"} {
		if q.Has(s) && bucket != "" && !strings.Contains(bucket, "/") {
			setting = s
		}
	}
	if setting == "" {
		c.gateway.ServeHTTP(w, r)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	id := fmt.Sprintf("s3ctl-%04d", c.n)
	w.Header().Set("X-Amz-Request-Id", id)
	if !signedFor(r, "s3") {
		c.problems = append(c.problems, fmt.Sprintf("%s %s is not signed for us-east-1/s3", r.Method, r.URL))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	key := bucket + "?" + setting
	switch r.Method {
	case http.MethodPut:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		c.settings[key] = body
	case http.MethodGet:
		body, ok := c.settings[key]
		if !ok {
			code := map[string]string{"encryption": "ServerSideEncryptionConfigurationNotFoundError", "publicAccessBlock": "NoSuchPublicAccessBlockConfiguration"}[setting]
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>not set</Message><RequestId>%s</RequestId></Error>", code, id)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write(body)
	default:
		c.problems = append(c.problems, fmt.Sprintf("%s %s is not served", r.Method, r.URL))
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// awsfakeclean fails when any fake received a request it refused or did
// not expect: unsigned, signed for another service or region, an
// operation it does not serve.
func cmdAWSFakeClean(ts *testscript.TestScript, neg bool, args []string) {
	f := fakesOf(ts, "awsfakeclean")
	var all []string
	all = append(all, f.iam.Problems()...)
	f.kms.mu.Lock()
	all = append(all, f.kms.problems...)
	f.kms.mu.Unlock()
	f.ctl.mu.Lock()
	all = append(all, f.ctl.problems...)
	f.ctl.mu.Unlock()
	if (len(all) == 0) == neg {
		ts.Fatalf("AWS fakes' problems: %q", all)
	}
}

// iamcheck FILE compares what IAM was asked to make with the documents of
// FILE, the output of `groundzero ci policy --format json`: the OIDC
// provider with its URL and audiences, and each role with exactly the
// generated trust policy and inline permission policy (byte for byte as
// sent, and as held now), its managed policies, and nothing else made.
func cmdIAMCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: iamcheck FILE")
	}
	f := fakesOf(ts, "iamcheck FILE")
	var out struct {
		Env        string            `json:"env"`
		Kind       string            `json:"kind"`
		Repository string            `json:"repository"`
		Identities ciidentity.AWSSet `json:"identities"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(ts.ReadFile(args[0]))))
	dec.DisallowUnknownFields()
	ts.Check(dec.Decode(&out))
	set := out.Identities
	if out.Env == "" || out.Kind != "s3" || set.Provider == "" || len(set.Roles) != 2 {
		ts.Fatalf("%s: environment %q, kind %q, provider %q, %d roles: not the AWS documents of one environment", args[0], out.Env, out.Kind, set.Provider, len(set.Roles))
	}
	reqs := f.iam.Requests()
	sent := func(op, role string) url.Values {
		var found []url.Values
		for _, r := range reqs {
			if r.Op == op && r.Params.Get("RoleName") == role && r.Status == http.StatusOK {
				found = append(found, r.Params)
			}
		}
		if len(found) != 1 {
			ts.Fatalf("IAM received %d successful %s for role %q, want 1", len(found), op, role)
		}
		return found[0]
	}
	// The provider.
	provs := f.iam.Providers()
	if len(provs) != 1 || provs[0].ARN != set.Provider || provs[0].URL != set.ProviderURL || !slices.Equal(provs[0].Audiences, set.Audiences) {
		ts.Fatalf("IAM OIDC providers = %+v, want only %s (%s) for audiences %v", provs, set.Provider, set.ProviderURL, set.Audiences)
	}
	p := sent("CreateOpenIDConnectProvider", "")
	ts.Logf("provider %s: audiences %v", set.Provider, set.Audiences)
	if p.Get("Url") != set.ProviderURL {
		ts.Fatalf("CreateOpenIDConnectProvider Url %q, want %q", p.Get("Url"), set.ProviderURL)
	}
	// The roles.
	var names, writes []string
	for _, role := range set.Roles {
		names = append(names, role.Name)
		writes = append(writes, "CreateRole "+role.Name, "PutRolePolicy "+role.Name)
		for range role.Attached {
			writes = append(writes, "AttachRolePolicy "+role.Name)
		}
		trust, perms := string(role.Trust.JSON()), string(role.Permissions.JSON())
		if got := sent("CreateRole", role.Name).Get("AssumeRolePolicyDocument"); got != trust {
			ts.Fatalf("CreateRole %s sent the trust policy\n%s\nwant, as `groundzero ci policy` prints it,\n%s", role.Name, got, trust)
		}
		pr := sent("PutRolePolicy", role.Name)
		if pr.Get("PolicyName") != ciidentity.InlinePolicy || pr.Get("PolicyDocument") != perms {
			ts.Fatalf("PutRolePolicy %s sent %s:\n%s\nwant %s:\n%s", role.Name, pr.Get("PolicyName"), pr.Get("PolicyDocument"), ciidentity.InlinePolicy, perms)
		}
		live, ok := f.iam.Role(role.Name)
		if !ok || live.ARN != role.ARN || live.Trust != trust || len(live.Inline) != 1 || live.Inline[ciidentity.InlinePolicy] != perms {
			ts.Fatalf("IAM holds role %s as %+v, want %s with the generated documents only", role.Name, live, role.ARN)
		}
		if !slices.Equal(live.Attached, role.Attached) && !(len(live.Attached) == 0 && len(role.Attached) == 0) {
			ts.Fatalf("role %s has managed policies %v, want %v", role.Name, live.Attached, role.Attached)
		}
		ts.Logf("role %s: trust and %s as generated (%d and %d bytes)", role.ARN, ciidentity.InlinePolicy, len(trust), len(perms))
	}
	if got := f.iam.RoleNames(); !slices.Equal(got, sorted(names)) {
		ts.Fatalf("IAM roles = %v, want %v", got, sorted(names))
	}
	// Nothing else was changed.
	var got []string
	for _, r := range reqs {
		if r.Writes() {
			if n := r.Params.Get("RoleName"); n != "" {
				got = append(got, r.Op+" "+n)
			} else {
				got = append(got, r.Op)
			}
		}
	}
	want := append([]string{"CreateOpenIDConnectProvider"}, writes...)
	if !slices.Equal(sorted(got), sorted(want)) {
		ts.Fatalf("IAM writes = %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// iammark makes iamlog list only the requests received from now on.
func cmdIAMMark(ts *testscript.TestScript, neg bool, args []string) {
	f := fakesOf(ts, "iammark")
	f.mark = len(f.iam.Requests())
}

// iamlog prints the IAM requests received since iammark, one a line:
// OPERATION RESOURCE STATUS REQUEST-ID.
func cmdIAMLog(ts *testscript.TestScript, neg bool, args []string) {
	f := fakesOf(ts, "iamlog")
	reqs := f.iam.Requests()
	for _, r := range reqs[min(f.mark, len(reqs)):] {
		res := r.Params.Get("RoleName")
		if res == "" {
			res = r.Params.Get("OpenIDConnectProviderArn") + r.Params.Get("Url")
		}
		if pn := r.Params.Get("PolicyName"); pn != "" {
			res += "/" + pn
		}
		fmt.Fprintf(ts.Stdout(), "%s %s %d %s\n", r.Op, res, r.Status, r.RequestID)
	}
}

// iamrole NAME prints the role's live trust policy and inline policies, as
// IAM holds them now.
func cmdIAMRole(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: iamrole NAME")
	}
	r, ok := fakesOf(ts, "iamrole NAME").iam.Role(args[0])
	if !ok {
		ts.Fatalf("iamrole: IAM has no role %s", args[0])
	}
	fmt.Fprintf(ts.Stdout(), "# trust policy of %s\n%s\n", r.ARN, r.Trust)
	names := make([]string, 0, len(r.Inline))
	for n := range r.Inline {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(ts.Stdout(), "# inline policy %s\n%s\n", n, r.Inline[n])
	}
}

// iamwiden ROLE resource SID ARN | iamwiden ROLE sub widens a live role as
// someone with IAM rights could, through the IAM API with the script's
// credentials: resource makes ARN the only resource of statement SID of
// the role's inline policy groundzero-state; sub drops the sub condition
// from its trust policy, so that any workflow of any repository whose
// token has the audience may assume it.
func cmdIAMWiden(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "iamwiden ROLE resource SID ARN | iamwiden ROLE sub"
	if neg || len(args) < 2 || !(args[1] == "resource" && len(args) == 4 || args[1] == "sub" && len(args) == 2) {
		ts.Fatalf("usage: %s", usage)
	}
	f := fakesOf(ts, usage)
	live, ok := f.iam.Role(args[0])
	if !ok {
		ts.Fatalf("iamwiden: IAM has no role %s", args[0])
	}
	c := iam.New(iam.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.iam.URL),
		Credentials: credentials.NewStaticCredentialsProvider(s3gateway.AccessKey, s3gateway.SecretKey, ""),
	})
	ctx := context.Background()
	var d ciidentity.Document
	switch args[1] {
	case "resource":
		ts.Check(json.Unmarshal([]byte(live.Inline[ciidentity.InlinePolicy]), &d))
		found := false
		for i := range d.Statement {
			if d.Statement[i].Sid == args[2] {
				d.Statement[i].Resource, found = []string{args[3]}, true
			}
		}
		if !found {
			ts.Fatalf("iamwiden: %s of %s has no statement %s", ciidentity.InlinePolicy, args[0], args[2])
		}
		_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(args[0]), PolicyName: aws.String(ciidentity.InlinePolicy), PolicyDocument: aws.String(string(d.JSON()))})
		ts.Check(err)
	case "sub":
		ts.Check(json.Unmarshal([]byte(live.Trust), &d))
		dropped := 0
		for _, st := range d.Statement {
			for op, keys := range st.Condition {
				for k := range keys {
					if strings.HasSuffix(k, ":sub") {
						delete(keys, k)
						dropped++
					}
				}
				if len(keys) == 0 {
					delete(st.Condition, op)
				}
			}
		}
		if dropped == 0 {
			ts.Fatalf("iamwiden: the trust policy of %s has no sub condition", args[0])
		}
		_, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(args[0]), PolicyDocument: aws.String(string(d.JSON()))})
		ts.Check(err)
	}
}

// The Google side: Google's REST clients take no endpoint from the
// environment, so they reach the fake at Google's own host names through
// an intercepting HTTPS proxy (iamfake.Intercept), configured only with
// what every Go client reads anyway: HTTPS_PROXY, SSL_CERT_FILE and
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS).

type gcpFake struct {
	gcp  *iamfake.GCP
	icpt *iamfake.Interceptor
	mark int
}

var gcpFakes sync.Map // *testscript.TestScript → *gcpFake

const gcpToken = "ya29.gcpfake-access-token"

// gcpfake starts, for the rest of the script, a fake Google IAM, Cloud
// Storage bucket IAM and OAuth token endpoint behind an intercepting proxy
// for iam.googleapis.com, storage.googleapis.com and
// oauth2.googleapis.com, and sets HTTPS_PROXY, SSL_CERT_FILE (the proxy's
// test CA) and GOOGLE_APPLICATION_CREDENTIALS (an authorized_user file
// whose refresh token the fake exchanges for its access token). Requests
// to any other https host through the proxy are refused.
func cmdGCPFake(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: gcpfake")
	}
	g := iamfake.StartGCP(gcpToken)
	icpt, err := iamfake.Intercept(ts.MkAbs(ts.Getenv("WORK")+"/.gcpfake"), g.Hosts())
	ts.Check(err)
	ts.Defer(icpt.Close)
	creds := ts.Getenv("WORK") + "/.gcpfake/adc.json"
	ts.Check(os.WriteFile(creds, []byte(`{"type": "authorized_user", "client_id": "gcpfake.apps.googleusercontent.com", "client_secret": "gcpfake-client-secret", "refresh_token": "gcpfake-refresh-token"}`), 0o600))
	gcpFakes.Store(ts, &gcpFake{gcp: g, icpt: icpt})
	ts.Setenv("HTTPS_PROXY", icpt.URL)
	ts.Setenv("SSL_CERT_FILE", icpt.CAFile)
	ts.Setenv("GOOGLE_APPLICATION_CREDENTIALS", creds)
}

func gcpFakeOf(ts *testscript.TestScript, usage string) *gcpFake {
	v, _ := gcpFakes.Load(ts)
	f, _ := v.(*gcpFake)
	if f == nil {
		ts.Fatalf("usage: %s (after gcpfake)", usage)
	}
	return f
}

// gcpcheck FILE compares what Google Cloud holds with the documents of
// FILE, the output of `groundzero ci policy --format json`: the pool, the
// provider's issuer, audiences, attribute mapping and condition, each
// service account with exactly the generated workloadIdentityUser
// principals, and the bucket's bindings; and that no fake refused a
// request or saw one without the token.
func cmdGCPCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gcpcheck FILE")
	}
	f := gcpFakeOf(ts, "gcpcheck FILE")
	var out struct {
		Env        string            `json:"env"`
		Kind       string            `json:"kind"`
		Repository string            `json:"repository"`
		Identities ciidentity.GCPSet `json:"identities"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(ts.ReadFile(args[0]))))
	dec.DisallowUnknownFields()
	ts.Check(dec.Decode(&out))
	set := out.Identities
	if out.Kind != "gcs" || set.Provider == "" || len(set.ServiceAccounts) != 2 {
		ts.Fatalf("%s: kind %q, provider %q, %d service accounts: not the Google documents of one environment", args[0], out.Kind, set.Provider, len(set.ServiceAccounts))
	}
	if _, ok := f.gcp.Object(set.Pool); !ok {
		ts.Fatalf("no workload identity pool %s", set.Pool)
	}
	raw, ok := f.gcp.Object(set.Provider)
	if !ok {
		ts.Fatalf("no workload identity provider %s", set.Provider)
	}
	var prov struct {
		AttributeCondition string            `json:"attributeCondition"`
		AttributeMapping   map[string]string `json:"attributeMapping"`
		OIDC               struct {
			IssuerURI        string   `json:"issuerUri"`
			AllowedAudiences []string `json:"allowedAudiences"`
		} `json:"oidc"`
	}
	ts.Check(json.Unmarshal(raw, &prov))
	if prov.AttributeCondition != set.AttributeCondition || prov.OIDC.IssuerURI != set.Issuer || !slices.Equal(prov.OIDC.AllowedAudiences, set.Audiences) || fmt.Sprint(prov.AttributeMapping) != fmt.Sprint(set.AttributeMapping) {
		ts.Fatalf("provider %s holds %s, want condition %q, issuer %s, audiences %v, mapping %v", set.Provider, raw, set.AttributeCondition, set.Issuer, set.Audiences, set.AttributeMapping)
	}
	var bucket []string
	for _, sa := range set.ServiceAccounts {
		_, domain, _ := strings.Cut(sa.Email, "@")
		name := "projects/" + strings.TrimSuffix(domain, ".iam.gserviceaccount.com") + "/serviceAccounts/" + sa.Email
		if _, ok := f.gcp.Object(name); !ok {
			ts.Fatalf("no service account %s", name)
		}
		var want []string
		for _, p := range sa.Principals {
			want = append(want, "roles/iam.workloadIdentityUser "+p)
		}
		if got := f.gcp.Bindings(name); !slices.Equal(got, sorted(want)) {
			ts.Fatalf("IAM policy of %s = %q, want %q", name, got, sorted(want))
		}
		for _, g := range sa.Bucket {
			b := g.Role + " " + g.Member
			if g.Condition != nil {
				b += " [" + g.Condition.Expression + "]"
			}
			bucket = append(bucket, b)
		}
		ts.Logf("service account %s: principals %v", sa.Email, sa.Principals)
	}
	if got := f.gcp.Bindings("projects/_/buckets/" + set.Bucket); !slices.Equal(got, sorted(bucket)) {
		ts.Fatalf("IAM policy of bucket %s = %q, want %q", set.Bucket, got, sorted(bucket))
	}
	if p, r := f.gcp.Problems(), f.icpt.Refused(); len(p)+len(r) > 0 {
		ts.Fatalf("Google fake problems %q; CONNECTs refused %q", p, r)
	}
}

// gcplog prints the Google requests received since the last gcplog, one a
// line: METHOD HOST PATH STATUS.
func cmdGCPLog(ts *testscript.TestScript, neg bool, args []string) {
	f := gcpFakeOf(ts, "gcplog")
	reqs := f.gcp.Requests()
	for _, r := range reqs[min(f.mark, len(reqs)):] {
		fmt.Fprintf(ts.Stdout(), "%s %s%s %d\n", r.Method, r.Host, r.Path, r.Status)
	}
	f.mark = len(reqs)
}

// gcpgrant RESOURCE ROLE MEMBER grants ROLE to MEMBER on the live
// resource (a service account's or bucket's resource name) without a
// condition, as someone holding setIamPolicy on it could.
func cmdGCPGrant(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: gcpgrant RESOURCE ROLE MEMBER")
	}
	gcpFakeOf(ts, "gcpgrant RESOURCE ROLE MEMBER").gcp.Grant(args[0], args[1], args[2])
}
