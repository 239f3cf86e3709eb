package s3

import (
	"encoding/json"
	"fmt"
	"slices"
)

// policyDoc is an IAM policy document in the shape this package writes.
type policyDoc struct {
	Version   string      `json:"Version"`
	Id        string      `json:"Id,omitempty"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal"`
	Action    any            `json:"Action"`
	Resource  any            `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// keyPolicy is the policy a new KMS key gets: the account's root principal
// administers the key and may use it, so that IAM policies in the account
// decide who else does (the KMS default policy, split in its two roles).
func keyPolicy(partition, account string) string {
	root := map[string]string{"AWS": "arn:" + partition + ":iam::" + account + ":root"}
	doc := policyDoc{Version: "2012-10-17", Id: "groundzero-state-key", Statement: []statement{
		{Sid: "KeyAdministration", Effect: "Allow", Principal: root, Resource: "*", Action: []string{
			"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
			"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
			"kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
		}},
		{Sid: "KeyUsage", Effect: "Allow", Principal: root, Resource: "*", Action: []string{
			"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
		}},
	}}
	b, _ := json.Marshal(doc)
	return string(b)
}

// tlsSid names the statement that refuses plaintext requests.
const tlsSid = "DenyInsecureTransport"

// tlsStatement denies every S3 action on the bucket and its objects to a
// request that did not come over TLS.
func tlsStatement(bucketARN string) statement {
	return statement{
		Sid: tlsSid, Effect: "Deny", Principal: "*", Action: "s3:*",
		Resource:  []string{bucketARN, bucketARN + "/*"},
		Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
}

// withTLSOnly returns the bucket policy with the TLS-only statement added,
// and whether it had to be added. An empty policy starts a new document;
// the other statements of an existing one are kept as they are.
func withTLSOnly(policy, bucketARN string) (string, bool, error) {
	if policy == "" {
		b, _ := json.Marshal(policyDoc{Version: "2012-10-17", Statement: []statement{tlsStatement(bucketARN)}})
		return string(b), true, nil
	}
	ok, err := hasTLSOnly(policy, bucketARN)
	if err != nil || ok {
		return policy, false, err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return "", false, err
	}
	var stmts []any
	switch v := doc["Statement"].(type) {
	case []any:
		stmts = v
	case map[string]any:
		stmts = []any{v}
	}
	doc["Statement"] = append(stmts, tlsStatement(bucketARN))
	if doc["Version"] == nil {
		doc["Version"] = "2012-10-17"
	}
	b, err := json.Marshal(doc)
	return string(b), true, err
}

// hasTLSOnly reports whether a bucket policy denies every S3 action on the
// bucket and its objects when aws:SecureTransport is false.
func hasTLSOnly(policy, bucketARN string) (bool, error) {
	var doc struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return false, fmt.Errorf("the bucket policy is not JSON: %v", err)
	}
	var stmts []map[string]any
	if err := json.Unmarshal(doc.Statement, &stmts); err != nil {
		var one map[string]any
		if err := json.Unmarshal(doc.Statement, &one); err != nil {
			return false, fmt.Errorf("the bucket policy's Statement is neither a list nor an object")
		}
		stmts = []map[string]any{one}
	}
	for _, st := range stmts {
		if st["Effect"] != "Deny" || !everyone(st["Principal"]) {
			continue
		}
		acts := values(st["Action"])
		if !slices.Contains(acts, "s3:*") && !slices.Contains(acts, "*") {
			continue
		}
		res := values(st["Resource"])
		if !slices.Contains(res, "*") && (!slices.Contains(res, bucketARN) || !slices.Contains(res, bucketARN+"/*")) {
			continue
		}
		cond, _ := st["Condition"].(map[string]any)
		b, _ := cond["Bool"].(map[string]any)
		for _, v := range values(b["aws:SecureTransport"]) {
			if v == "false" {
				return true, nil
			}
		}
	}
	return false, nil
}

// everyone reports whether a policy principal is every principal.
func everyone(p any) bool {
	if p == "*" {
		return true
	}
	m, _ := p.(map[string]any)
	return slices.Contains(values(m["AWS"]), "*")
}

// values reads a policy value that is a string or a list of them (a JSON
// boolean counts as its text).
func values(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case bool:
		return []string{fmt.Sprint(v)}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, values(e)...)
		}
		return out
	}
	return nil
}
