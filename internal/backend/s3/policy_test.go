package s3

import (
	"encoding/json"
	"testing"
)

const testBucket = "arn:aws:s3:::state"

func TestHasTLSOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		want   bool
	}{
		{"ours", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::state","arn:aws:s3:::state/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, true},
		{"one statement object, AWS principal, boolean false", `{"Statement":{"Effect":"Deny","Principal":{"AWS":"*"},"Action":["s3:*"],"Resource":["arn:aws:s3:::state/*","arn:aws:s3:::state"],"Condition":{"Bool":{"aws:SecureTransport":false}}}}`, true},
		{"every resource", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":["false"]}}}]}`, true},
		{"objects only", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::state/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
		{"some actions only", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":["arn:aws:s3:::state","arn:aws:s3:::state/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
		{"allow", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::state","arn:aws:s3:::state/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
		{"denies TLS", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::state","arn:aws:s3:::state/*"],"Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, false},
		{"one principal", `{"Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
		{"another bucket", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::other","arn:aws:s3:::other/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
	} {
		got, err := hasTLSOnly(tc.policy, testBucket)
		if err != nil || got != tc.want {
			t.Errorf("hasTLSOnly(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := hasTLSOnly(`{"Statement":"x"`, testBucket); err == nil {
		t.Error("hasTLSOnly(invalid JSON) succeeded, want an error")
	}
}

// Adding the TLS statement keeps every other statement and is idempotent.
func TestWithTLSOnly(t *testing.T) {
	existing := `{"Version":"2012-10-17","Statement":{"Sid":"ReadOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/r"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::state/*"}}`
	doc, changed, err := withTLSOnly(existing, testBucket)
	if err != nil || !changed {
		t.Fatalf("withTLSOnly(existing) = %v, %v; want a change", changed, err)
	}
	var got struct {
		Version   string
		Statement []struct{ Sid string }
	}
	if err := json.Unmarshal([]byte(doc), &got); err != nil || got.Version != "2012-10-17" || len(got.Statement) != 2 ||
		got.Statement[0].Sid != "ReadOnly" || got.Statement[1].Sid != tlsSid {
		t.Fatalf("withTLSOnly(existing) = %s (%v), want ReadOnly kept and %s added", doc, err, tlsSid)
	}
	if ok, _ := hasTLSOnly(doc, testBucket); !ok {
		t.Fatalf("withTLSOnly's result %s is not TLS-only", doc)
	}
	again, changed, err := withTLSOnly(doc, testBucket)
	if err != nil || changed || again != doc {
		t.Fatalf("withTLSOnly twice = %s, %v, %v; want it unchanged", again, changed, err)
	}
	fresh, changed, err := withTLSOnly("", testBucket)
	if ok, _ := hasTLSOnly(fresh, testBucket); err != nil || !changed || !ok {
		t.Fatalf("withTLSOnly(\"\") = %s, %v, %v; want a TLS-only policy", fresh, changed, err)
	}
}

func TestSameKey(t *testing.T) {
	const arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{arn, arn, true},
		{arn, "1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", arn, true},
		{arn, "arn:aws:kms:eu-west-1:111122223333:key/other", false},
		{arn, "abcd-12ab-34cd-56ef-1234567890ab", false},
		{"", "", false},
		{"x", "key/x", false},
	} {
		if got := sameKey(tc.a, tc.b); got != tc.want {
			t.Errorf("sameKey(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestKeyPolicy(t *testing.T) {
	var doc policyDoc
	if err := json.Unmarshal([]byte(keyPolicy("aws-cn", "111122223333")), &doc); err != nil || len(doc.Statement) != 2 {
		t.Fatalf("keyPolicy = %v, %v", doc, err)
	}
	for _, st := range doc.Statement {
		if p, _ := st.Principal.(map[string]any); p["AWS"] != "arn:aws-cn:iam::111122223333:root" {
			t.Errorf("key policy statement %s principal = %v, want the account root in its partition", st.Sid, st.Principal)
		}
	}
}
