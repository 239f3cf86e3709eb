package s3_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/backend/s3"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// AWS KMS, DynamoDB, STS and S3's control features cannot be reached here.
// fakeAWS is one httptest server for all four that checks every request's
// signature scope and shape, keeps what it was sent for the tests to
// check, and answers with minimal valid responses, each with its own
// request ID.
type fakeAWS struct {
	t      *testing.T
	region string

	mu  sync.Mutex
	ids []string // request IDs answered, in order
	ops []string // SERVICE:OPERATION received, in order
	// 501 NotImplemented for these S3 subresources ("publicAccessBlock").
	notImplemented map[string]bool

	// KMS
	keyARN       string
	aliased      bool
	keyState     string
	rotation     bool
	rotationDays int
	createKey    map[string]any
	enableRot    map[string]any
	// S3 bucket "state-bucket"
	bucket       bool
	createBucket createBucketConfiguration
	versioning   string
	encryption   []byte // the settings as last put, "" when absent
	pab          []byte
	policy       []byte
	tagging      []byte
	replication  []byte
	// DynamoDB
	createTable map[string]any
	table       bool
}

const (
	account   = "111122223333"
	fakeKeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
)

type xmlTag struct{ Key, Value string }

type createBucketConfiguration struct {
	LocationConstraint string
	Tags               []xmlTag `xml:"Tags>Tag"`
}

func newFakeAWS(t *testing.T, region string) (*fakeAWS, *httptest.Server) {
	f := &fakeAWS{t: t, region: region, notImplemented: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s3gateway.UseEnv(t) // no ambient AWS_* settings
	for _, svc := range []string{"KMS", "DYNAMODB", "STS"} {
		t.Setenv("AWS_ENDPOINT_URL_"+svc, srv.URL)
	}
	return f, srv
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("%s %s: %v", r.Method, r.URL, err)
	}
	service, op := "s3", ""
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, "TrentService."):
		service, op = "kms", strings.TrimPrefix(target, "TrentService.")
	case strings.HasPrefix(target, "DynamoDB_20120810."):
		service, op = "dynamodb", strings.TrimPrefix(target, "DynamoDB_20120810.")
	case strings.Contains(string(body), "Action=GetCallerIdentity"):
		service, op = "sts", "GetCallerIdentity"
	}
	// Signed with the credentials given in Options, for this service and
	// region.
	scope := "/" + f.region + "/" + service + "/aws4_request"
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDFAKE/") || !strings.Contains(auth, scope) {
		f.t.Errorf("%s %s %s: Authorization %q, want AKIDFAKE scoped to %s", service, r.Method, r.URL, auth, scope)
	}
	id := fmt.Sprintf("%s-req-%d", service, len(f.ids)+1)
	f.ids = append(f.ids, id)
	if service == "s3" {
		w.Header().Set("X-Amz-Request-Id", id)
		f.s3(w, r, body)
		return
	}
	w.Header().Set("X-Amzn-Requestid", id)
	f.ops = append(f.ops, service+":"+op)
	var in map[string]any
	if service != "sts" {
		if err := json.Unmarshal(body, &in); err != nil {
			f.t.Errorf("%s:%s body %q is not JSON: %v", service, op, body, err)
		}
	}
	switch service {
	case "kms":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		f.kms(w, op, in)
	case "dynamodb":
		// DynamoDB sends the CRC32 of every response body, and the SDK
		// checks it.
		rec := httptest.NewRecorder()
		f.dynamodb(rec, op, in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE(rec.Body.Bytes())))
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	case "sts":
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::%s:user/bootstrap</Arn><UserId>AIDAFAKE</UserId><Account>%s</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, account, account, id)
	}
}

func jsonError(w http.ResponseWriter, typ, msg string) {
	w.WriteHeader(400)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (f *fakeAWS) keyMetadata() map[string]any {
	return map[string]any{"KeyId": fakeKeyID, "Arn": f.keyARN, "AWSAccountId": account, "KeyState": f.keyState,
		"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Enabled": f.keyState == "Enabled"}
}

func (f *fakeAWS) kms(w http.ResponseWriter, op string, in map[string]any) {
	keyID, _ := in["KeyId"].(string)
	switch op {
	case "DescribeKey":
		if f.keyARN == "" || (strings.HasPrefix(keyID, "alias/") && !f.aliased) || (!strings.HasPrefix(keyID, "alias/") && keyID != f.keyARN) {
			jsonError(w, "NotFoundException", keyID+" is not found.")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": f.keyMetadata()})
	case "CreateKey":
		f.createKey = in
		f.keyARN = "arn:aws:kms:" + f.region + ":" + account + ":key/" + fakeKeyID
		f.keyState = "Enabled"
		json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": f.keyMetadata()})
	case "CreateAlias":
		if in["TargetKeyId"] != f.keyARN || !strings.HasPrefix(fmt.Sprint(in["AliasName"]), "alias/") {
			f.t.Errorf("CreateAlias %v, want an alias/ name for %s", in, f.keyARN)
		}
		f.aliased = true
		io.WriteString(w, "{}")
	case "EnableKeyRotation":
		if keyID != f.keyARN {
			f.t.Errorf("EnableKeyRotation of %q, want %s", keyID, f.keyARN)
		}
		f.enableRot = in
		f.rotation = true
		if d, ok := in["RotationPeriodInDays"].(float64); ok {
			f.rotationDays = int(d)
		} else {
			f.rotationDays = 365
		}
		io.WriteString(w, "{}")
	case "GetKeyRotationStatus":
		if keyID != f.keyARN {
			f.t.Errorf("GetKeyRotationStatus of %q, want %s", keyID, f.keyARN)
		}
		json.NewEncoder(w).Encode(map[string]any{"KeyId": f.keyARN, "KeyRotationEnabled": f.rotation, "RotationPeriodInDays": f.rotationDays})
	default:
		f.t.Errorf("unexpected kms:%s %v", op, in)
		jsonError(w, "UnsupportedOperationException", op)
	}
}

func (f *fakeAWS) dynamodb(w http.ResponseWriter, op string, in map[string]any) {
	name, _ := in["TableName"].(string)
	desc := func() map[string]any {
		return map[string]any{"TableName": name, "TableArn": "arn:aws:dynamodb:" + f.region + ":" + account + ":table/" + name,
			"TableStatus": "ACTIVE", "KeySchema": f.createTable["KeySchema"], "AttributeDefinitions": f.createTable["AttributeDefinitions"]}
	}
	switch op {
	case "DescribeTable":
		if !f.table {
			jsonError(w, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "Requested resource not found: Table: "+name+" not found")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Table": desc()})
	case "CreateTable":
		f.createTable = in
		f.table = true
		json.NewEncoder(w).Encode(map[string]any{"TableDescription": desc()})
	default:
		f.t.Errorf("unexpected dynamodb:%s %v", op, in)
		jsonError(w, "UnknownOperationException", op)
	}
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake</Message></Error>`, code)
}

// s3 serves bucket state-bucket, path-style.
func (f *fakeAWS) s3(w http.ResponseWriter, r *http.Request, body []byte) {
	q := r.URL.Query()
	sub := ""
	for _, k := range []string{"versioning", "encryption", "publicAccessBlock", "policy", "tagging", "replication"} {
		if q.Has(k) {
			sub = k
		}
	}
	f.ops = append(f.ops, "s3:"+r.Method+" "+sub)
	if r.URL.Path != "/state-bucket" {
		f.t.Errorf("s3 %s %s: want path-style requests for /state-bucket", r.Method, r.URL)
		s3Error(w, 400, "InvalidRequest")
		return
	}
	if f.notImplemented[sub] {
		s3Error(w, 501, "NotImplemented")
		return
	}
	if sub == "" {
		switch r.Method {
		case http.MethodHead:
			if !f.bucket {
				w.WriteHeader(404)
			}
		case http.MethodPut:
			if f.bucket {
				s3Error(w, 409, "BucketAlreadyOwnedByYou")
				return
			}
			f.createBucket = createBucketConfiguration{}
			if err := xml.Unmarshal(body, &f.createBucket); len(body) > 0 && err != nil {
				f.t.Errorf("CreateBucket body %q: %v", body, err)
			}
			f.bucket = true
			f.tagging = nil
			if len(f.createBucket.Tags) > 0 {
				f.tagging, _ = xml.Marshal(struct {
					XMLName xml.Name `xml:"Tagging"`
					Tags    []xmlTag `xml:"TagSet>Tag"`
				}{Tags: f.createBucket.Tags})
			}
		default:
			f.t.Errorf("unexpected s3 %s %s", r.Method, r.URL)
			s3Error(w, 405, "MethodNotAllowed")
		}
		return
	}
	if !f.bucket {
		s3Error(w, 404, "NoSuchBucket")
		return
	}
	if sub == "versioning" {
		switch r.Method {
		case http.MethodGet:
			fmt.Fprintf(w, `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>%s</Status></VersioningConfiguration>`, f.versioning)
		case http.MethodPut:
			var v struct{ Status string }
			if err := xml.Unmarshal(body, &v); err != nil {
				f.t.Errorf("PutBucketVersioning body %q: %v", body, err)
			}
			f.versioning = v.Status
		}
		return
	}
	// The other settings are kept as put and answered as they were put
	// (S3's Get output has the shape of its Put input).
	setting := map[string]*[]byte{"encryption": &f.encryption, "publicAccessBlock": &f.pab, "policy": &f.policy,
		"tagging": &f.tagging, "replication": &f.replication}[sub]
	absent := map[string]string{"encryption": "ServerSideEncryptionConfigurationNotFoundError", "publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
		"policy": "NoSuchBucketPolicy", "tagging": "NoSuchTagSet", "replication": "ReplicationConfigurationNotFoundError"}[sub]
	switch r.Method {
	case http.MethodGet:
		if len(*setting) == 0 {
			s3Error(w, 404, absent)
			return
		}
		w.Write(*setting)
	case http.MethodPut:
		*setting = body
		if sub == "policy" {
			w.WriteHeader(204)
		}
	default:
		f.t.Errorf("unexpected s3 %s %s", r.Method, r.URL)
		s3Error(w, 405, "MethodNotAllowed")
	}
}

// awsSpec is a kind s3 spec with everything Create makes.
func awsSpec(endpoint string) backend.Spec {
	return backend.Spec{
		Kind: backend.KindS3, Env: "prod", Bucket: "state-bucket", Region: "eu-west-1", Endpoint: endpoint,
		Lock: backend.LockDynamoDB, LockTable: "tf-locks", Versioning: true,
		Key:  backend.Key{Provider: backend.KeyAWSKMS, Name: "groundzero-prod", RotationDays: 180},
		Tags: map[string]string{"owner": "platform", "cost-center": "42"},
		Replica: &backend.Replica{Region: "eu-central-1", Bucket: "state-replica",
			Role: "arn:aws:iam::" + account + ":role/state-replication", Key: "arn:aws:kms:eu-central-1:" + account + ":key/replica"},
	}
}

func openAWS(t *testing.T, spec backend.Spec) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), spec, s3.Options{Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", "")})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return st
}

// wantTags checks that tags (as name, value pairs) are the spec's.
func wantTags(t *testing.T, where string, got [][2]string) {
	t.Helper()
	slices.SortFunc(got, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if want := [][2]string{{"cost-center", "42"}, {"owner", "platform"}}; !slices.Equal(got, want) {
		t.Errorf("%s tags = %v, want %v", where, got, want)
	}
}

func TestAWSCreate(t *testing.T) {
	f, srv := newFakeAWS(t, "eu-west-1")
	spec := awsSpec(srv.URL)
	ctx := context.Background()
	p, err := openAWS(t, spec).Create(ctx)
	if err != nil {
		t.Fatalf("Create = %v; calls %+v", err, p.Calls)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tableARN := "arn:aws:dynamodb:eu-west-1:" + account + ":table/tf-locks"
	if p.Key != f.keyARN || p.Bucket != "arn:aws:s3:::state-bucket" || p.Lock != tableARN {
		t.Fatalf("Create = key %q bucket %q lock %q, want %q, arn:aws:s3:::state-bucket, %q", p.Key, p.Bucket, p.Lock, f.keyARN, tableARN)
	}

	// Every request is one call, in order, with the request ID it was
	// answered with, from S3's x-amz-request-id and the JSON services'
	// x-amzn-RequestId alike.
	if len(p.Calls) != len(f.ids) {
		t.Fatalf("Create recorded %d calls for %d requests: %+v", len(p.Calls), len(f.ids), p.Calls)
	}
	for i, c := range p.Calls {
		if c.RequestID != f.ids[i] || !strings.HasPrefix(c.RequestID, c.Service+"-") || c.Resource == "" || c.Outcome == "" {
			t.Errorf("call %d = %+v, want request ID %s, a resource and an outcome", i, c, f.ids[i])
		}
	}

	// The key: tags and a policy at creation, then alias and rotation.
	if got := f.ops[:5]; !slices.Equal(got, []string{"kms:DescribeKey", "sts:GetCallerIdentity", "kms:CreateKey", "kms:CreateAlias", "kms:EnableKeyRotation"}) {
		t.Errorf("first requests = %v, want the key looked up, then created, aliased and rotated", got)
	}
	var keyTags [][2]string
	for _, tag := range f.createKey["Tags"].([]any) {
		m := tag.(map[string]any)
		keyTags = append(keyTags, [2]string{fmt.Sprint(m["TagKey"]), fmt.Sprint(m["TagValue"])})
	}
	wantTags(t, "CreateKey", keyTags)
	var pol struct {
		Statement []struct {
			Effect    string
			Principal struct{ AWS string }
			Action    []string
		}
	}
	if err := json.Unmarshal([]byte(fmt.Sprint(f.createKey["Policy"])), &pol); err != nil || len(pol.Statement) != 2 {
		t.Fatalf("CreateKey policy %v: %v; want two statements", f.createKey["Policy"], err)
	}
	var actions []string
	for _, st := range pol.Statement {
		if st.Effect != "Allow" || st.Principal.AWS != "arn:aws:iam::"+account+":root" {
			t.Errorf("key policy statement %+v, want Allow for the account root", st)
		}
		actions = append(actions, st.Action...)
	}
	for _, a := range []string{"kms:Put*", "kms:ScheduleKeyDeletion", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"} {
		if !slices.Contains(actions, a) {
			t.Errorf("key policy lacks %s: %v", a, actions)
		}
	}
	if f.createKey["KeySpec"] != "SYMMETRIC_DEFAULT" || f.createKey["KeyUsage"] != "ENCRYPT_DECRYPT" {
		t.Errorf("CreateKey %v, want a symmetric encryption key", f.createKey)
	}
	if f.enableRot["RotationPeriodInDays"] != float64(180) {
		t.Errorf("EnableKeyRotation %v, want RotationPeriodInDays 180", f.enableRot)
	}

	// The bucket: tags and region in the create request itself.
	var bucketTags [][2]string
	for _, tag := range f.createBucket.Tags {
		bucketTags = append(bucketTags, [2]string{tag.Key, tag.Value})
	}
	wantTags(t, "CreateBucketConfiguration", bucketTags)
	if f.createBucket.LocationConstraint != "eu-west-1" {
		t.Errorf("CreateBucket LocationConstraint = %q, want eu-west-1", f.createBucket.LocationConstraint)
	}
	if f.versioning != "Enabled" {
		t.Errorf("versioning = %q, want Enabled", f.versioning)
	}
	var enc struct {
		Rule []struct {
			Alg       string `xml:"ApplyServerSideEncryptionByDefault>SSEAlgorithm"`
			Key       string `xml:"ApplyServerSideEncryptionByDefault>KMSMasterKeyID"`
			BucketKey bool   `xml:"BucketKeyEnabled"`
		}
	}
	if err := xml.Unmarshal(f.encryption, &enc); err != nil || len(enc.Rule) != 1 || enc.Rule[0].Alg != "aws:kms" || enc.Rule[0].Key != f.keyARN || !enc.Rule[0].BucketKey {
		t.Errorf("PutBucketEncryption %s (%v), want one aws:kms rule with %s and a bucket key", f.encryption, err, f.keyARN)
	}
	var pab struct {
		BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets bool
	}
	if err := xml.Unmarshal(f.pab, &pab); err != nil || !pab.BlockPublicAcls || !pab.IgnorePublicAcls || !pab.BlockPublicPolicy || !pab.RestrictPublicBuckets {
		t.Errorf("PutPublicAccessBlock %s (%v), want all four settings true", f.pab, err)
	}
	var bp struct {
		Statement []struct {
			Effect    string
			Principal string
			Action    string
			Resource  []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal(f.policy, &bp); err != nil || len(bp.Statement) != 1 {
		t.Fatalf("PutBucketPolicy %s: %v; want one statement", f.policy, err)
	}
	if st := bp.Statement[0]; st.Effect != "Deny" || st.Principal != "*" || st.Action != "s3:*" ||
		!slices.Equal(st.Resource, []string{"arn:aws:s3:::state-bucket", "arn:aws:s3:::state-bucket/*"}) ||
		st.Condition["Bool"]["aws:SecureTransport"] != "false" {
		t.Errorf("bucket policy statement %+v, want Deny s3:* on the bucket and its objects when aws:SecureTransport is false", st)
	}
	var rep struct {
		Role string
		Rule []struct {
			Status     string
			SSEKMS     string `xml:"SourceSelectionCriteria>SseKmsEncryptedObjects>Status"`
			Bucket     string `xml:"Destination>Bucket"`
			ReplicaKey string `xml:"Destination>EncryptionConfiguration>ReplicaKmsKeyID"`
		}
	}
	if err := xml.Unmarshal(f.replication, &rep); err != nil || rep.Role != spec.Replica.Role || len(rep.Rule) != 1 ||
		rep.Rule[0].Status != "Enabled" || rep.Rule[0].Bucket != "arn:aws:s3:::state-replica" || rep.Rule[0].SSEKMS != "Enabled" || rep.Rule[0].ReplicaKey != spec.Replica.Key {
		t.Errorf("PutBucketReplication %s (%v), want every object, SSE-KMS ones too, to arn:aws:s3:::state-replica with the replica key, as the role", f.replication, err)
	}

	// The lock table.
	tbl, _ := json.Marshal(map[string]any{"KeySchema": f.createTable["KeySchema"], "AttributeDefinitions": f.createTable["AttributeDefinitions"],
		"BillingMode": f.createTable["BillingMode"], "SSESpecification": f.createTable["SSESpecification"]})
	want := `{"AttributeDefinitions":[{"AttributeName":"LockID","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST",` +
		`"KeySchema":[{"AttributeName":"LockID","KeyType":"HASH"}],"SSESpecification":{"Enabled":true,"KMSMasterKeyId":"` + f.keyARN + `","SSEType":"KMS"}}`
	if string(tbl) != want {
		t.Errorf("CreateTable = %s, want %s", tbl, want)
	}
	var tableTags [][2]string
	for _, tag := range f.createTable["Tags"].([]any) {
		m := tag.(map[string]any)
		tableTags = append(tableTags, [2]string{fmt.Sprint(m["Key"]), fmt.Sprint(m["Value"])})
	}
	wantTags(t, "CreateTable", tableTags)
}

// A second Create reads everything and changes nothing; Verify then finds
// no drift.
func TestAWSCreateTwice(t *testing.T) {
	f, srv := newFakeAWS(t, "eu-west-1")
	spec := awsSpec(srv.URL)
	ctx := context.Background()
	first, err := openAWS(t, spec).Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	before := len(f.ops)
	f.mu.Unlock()
	second, err := openAWS(t, spec).Create(ctx)
	if err != nil {
		t.Fatalf("Create #2 = %v; calls %+v", err, second.Calls)
	}
	if n := outcomes(second.Calls); n["created"] != 0 || n["updated"] != 0 {
		t.Fatalf("Create #2 outcomes = %v, want nothing created or updated; calls %+v", n, second.Calls)
	}
	if second.Key != first.Key || second.Bucket != first.Bucket || second.Lock != first.Lock {
		t.Fatalf("Create #2 = %+v, want what #1 made: %+v", second, first)
	}
	f.mu.Lock()
	for _, op := range f.ops[before:] {
		if strings.Contains(op, "Create") || strings.Contains(op, "Enable") || strings.Contains(op, "PUT") {
			t.Errorf("Create #2 sent %s", op)
		}
	}
	f.mu.Unlock()
	findings, calls, err := openAWS(t, spec).Verify(ctx, first.Key)
	if err != nil || len(findings) != 0 {
		t.Fatalf("Verify = %v, %v; want no findings; calls %+v", findings, err, calls)
	}
}

// Verify reports each kind of drift, naming the resource and the fix.
func TestAWSVerifyDrift(t *testing.T) {
	f, srv := newFakeAWS(t, "eu-west-1")
	spec := awsSpec(srv.URL)
	ctx := context.Background()
	p, err := openAWS(t, spec).Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := openAWS(t, spec).Verify(ctx, ""); err == nil {
		t.Error("Verify without the key the lock records succeeded, want an error")
	}
	f.mu.Lock()
	f.versioning = "Suspended"
	f.encryption = []byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm>` +
		`<KMSMasterKeyID>arn:aws:kms:eu-west-1:` + account + `:key/other</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`)
	f.pab = []byte(`<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>` +
		`<BlockPublicPolicy>false</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>`)
	f.policy = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::state-bucket/*"}]}`)
	f.tagging = []byte(`<Tagging><TagSet><Tag><Key>owner</Key><Value>someone-else</Value></Tag></TagSet></Tagging>`)
	f.replication = nil
	f.table = false
	f.rotation = false
	f.mu.Unlock()

	findings, calls, err := openAWS(t, spec).Verify(ctx, p.Key)
	if err != nil {
		t.Fatalf("Verify = %v; calls %+v", err, calls)
	}
	got := map[string]backend.Finding{}
	for _, fd := range findings {
		if _, dup := got[fd.Check]; dup || fd.Resource == "" || fd.Detail == "" {
			t.Errorf("finding %+v: want one per check, with a resource and a detail", fd)
		}
		got[fd.Check] = fd
	}
	for check, want := range map[string]string{
		"versioning":    "Suspended",
		"key":           "key/other",
		"public_access": "BlockPublicPolicy",
		"tls_policy":    "aws:SecureTransport",
		"tags":          "owner",
		"replication":   "does not replicate",
		"lock_table":    "does not exist",
		"key_rotation":  "enable-key-rotation",
	} {
		if !strings.Contains(got[check].Detail, want) {
			t.Errorf("%s finding = %+v, want a detail with %q", check, got[check], want)
		}
	}
	if len(findings) != 8 {
		t.Errorf("Verify gave %d findings, want 8: %v", len(findings), findings)
	}
	if r := got["lock_table"].Resource; r != "tf-locks" {
		t.Errorf("lock_table finding names %q, want tf-locks", r)
	}
	if r := got["key_rotation"].Resource; r != p.Key {
		t.Errorf("key_rotation finding names %q, want %s", r, p.Key)
	}

	// A missing bucket is one finding, and the key and the lock table are
	// still checked.
	f.mu.Lock()
	f.bucket = false
	f.rotation = true
	f.mu.Unlock()
	findings, _, err = openAWS(t, spec).Verify(ctx, p.Key)
	if err != nil || len(findings) != 2 || findings[0].Check != "bucket" || findings[0].Resource != "arn:aws:s3:::state-bucket" || findings[1].Check != "lock_table" {
		t.Fatalf("Verify of a missing bucket and table = %v, %v; want the bucket and lock_table findings", findings, err)
	}
}

// On AWS a 501 fails Create; a compatible store's 501 is recorded and
// Create goes on.
func TestNotImplemented(t *testing.T) {
	f, srv := newFakeAWS(t, "us-east-1")
	f.notImplemented["publicAccessBlock"] = true
	ctx := context.Background()

	spec := backend.Spec{Kind: backend.KindS3, Env: "prod", Bucket: "state-bucket", Endpoint: srv.URL, Lock: backend.LockFile,
		Versioning: true, Key: backend.Key{Provider: backend.KeyOpenBao, Address: "https://vault.example", ID: "transit/keys/state"}}
	p, err := openAWS(t, spec).Create(ctx)
	if err == nil || !strings.Contains(err.Error(), "PutPublicAccessBlock") {
		t.Fatalf("Create on AWS with a 501 = %v, want an error naming PutPublicAccessBlock", err)
	}
	if last := p.Calls[len(p.Calls)-1]; last.Operation != "PutPublicAccessBlock" || last.Outcome != "failed" || last.RequestID == "" {
		t.Errorf("last call = %+v, want the failed PutPublicAccessBlock with its request ID", last)
	}
	f.mu.Lock()
	var enc struct {
		Alg string `xml:"Rule>ApplyServerSideEncryptionByDefault>SSEAlgorithm"`
	}
	xml.Unmarshal(f.encryption, &enc)
	if enc.Alg != "AES256" {
		t.Errorf("encryption with an OpenBao key = %s, want AES256 (the state itself is encrypted by OpenTofu)", f.encryption)
	}
	f.bucket = false
	f.mu.Unlock()

	spec.Kind, spec.Key = backend.KindMinIO, backend.Key{}
	p, err = openAWS(t, spec).Create(ctx)
	if err != nil {
		t.Fatalf("Create on minio with a 501 = %v", err)
	}
	var unsupported []string
	for _, c := range p.Calls {
		if c.Outcome == "unsupported" {
			unsupported = append(unsupported, c.Operation)
		}
	}
	if !slices.Equal(unsupported, []string{"PutPublicAccessBlock"}) {
		t.Errorf("unsupported calls = %v, want PutPublicAccessBlock; calls %+v", unsupported, p.Calls)
	}
	if want := srv.URL + "/state-bucket"; p.Bucket != want {
		t.Errorf("minio bucket = %q, want %q", p.Bucket, want)
	}
	// On minio a public access block the store lacks is not drift.
	findings, _, err := openAWS(t, spec).Verify(ctx, "")
	if err != nil || len(findings) != 0 {
		t.Errorf("Verify on minio = %v, %v; want no findings", findings, err)
	}
}

// Requests go to the kind's endpoint, path-style or virtual-hosted, through
// the HTTP client given in Options.
func TestAddressing(t *testing.T) {
	s3gateway.UseEnv(t)
	for _, tc := range []struct {
		spec backend.Spec
		want string
	}{
		{backend.Spec{Kind: backend.KindS3, Region: "eu-west-1"}, "https://state.s3.eu-west-1.amazonaws.com/"},
		{backend.Spec{Kind: backend.KindSpaces, Region: "nyc3"}, "https://state.nyc3.digitaloceanspaces.com/"},
		{backend.Spec{Kind: backend.KindMinIO, Endpoint: "https://minio.example:9000"}, "https://minio.example:9000/state"},
		{backend.Spec{Kind: backend.KindS3, Endpoint: "http://127.0.0.1:9000"}, "http://127.0.0.1:9000/state"},
		{backend.Spec{Kind: backend.KindOCI, Region: "eu-frankfurt-1", Namespace: "ns", Compartment: "ocid1.compartment.oc1..x",
			Key: backend.Key{Provider: backend.KeyPBKDF2}}, "https://ns.compat.objectstorage.eu-frankfurt-1.oraclecloud.com/state"},
	} {
		spec := tc.spec
		spec.Env, spec.Bucket, spec.Lock = "prod", "state", backend.LockFile
		if spec.Kind == backend.KindS3 {
			spec.Key = backend.Key{Provider: backend.KeyAWSKMS, Name: "k"}
		}
		var got []string
		client := clientFunc(func(r *http.Request) (*http.Response, error) {
			got = append(got, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
			return &http.Response{StatusCode: 403, Header: http.Header{"X-Amz-Request-Id": {"denied-1"}}, Body: http.NoBody, Request: r}, nil
		})
		st, err := s3.New(context.Background(), spec, s3.Options{HTTPClient: client})
		if err != nil {
			t.Errorf("New(%s) = %v", spec.Kind, err)
			continue
		}
		_, calls, err := st.Probe(context.Background())
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s: Probe against a store that refuses = %v, want the 403", spec.Kind, err)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: requests %v, want one to %s", spec.Kind, got, tc.want)
		}
		if len(calls) != 1 || calls[0].Outcome != "failed" || calls[0].RequestID != "denied-1" {
			t.Errorf("%s: calls %+v, want the failed HeadBucket with its request ID", spec.Kind, calls)
		}
	}
}

type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewRefuses(t *testing.T) {
	s3gateway.UseEnv(t)
	base := awsSpec("")
	for _, tc := range []struct {
		name, want string
		change     func(*backend.Spec)
	}{
		{"gcs kind", "not served over the S3 API", func(s *backend.Spec) { s.Kind, s.Project = backend.KindGCS, "p" }},
		{"replica without role", "role", func(s *backend.Spec) { s.Replica.Role = "" }},
		{"replica without key", "replica needs key", func(s *backend.Spec) { s.Replica.Key = "" }},
		{"replica unversioned", "needs versioning", func(s *backend.Spec) { s.Versioning = false }},
		{"rotation too short", "rotation_days 30", func(s *backend.Spec) { s.Key.RotationDays = 30 }},
		{"kms key without name", "key.name", func(s *backend.Spec) { s.Key.Name = "" }},
		{"endpoint not a URL", "not an http(s) URL", func(s *backend.Spec) { s.Endpoint = "127.0.0.1:9000" }},
		{"spaces without region", "needs a region or an endpoint", func(s *backend.Spec) {
			s.Kind, s.Region, s.Key, s.Lock, s.Replica = backend.KindSpaces, "", backend.Key{}, backend.LockFile, nil
		}},
		{"minio without endpoint", "needs an endpoint", func(s *backend.Spec) {
			s.Kind, s.Key, s.Lock, s.Replica = backend.KindMinIO, backend.Key{}, backend.LockFile, nil
		}},
	} {
		spec := base
		r := *base.Replica
		spec.Replica = &r
		tc.change(&spec)
		if _, err := s3.New(context.Background(), spec, s3.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %s = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := s3.New(context.Background(), base, s3.Options{}); err != nil {
		t.Errorf("New(base spec) = %v", err)
	}
}
