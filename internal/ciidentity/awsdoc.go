package ciidentity

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/groundzero/groundzero/internal/backend"
)

// Document is an IAM policy document. It marshals deterministically: fields
// in this order, condition keys sorted.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a Document. A one-element list marshals as
// a list: the documents are compared after parsing, never as bytes.
type Statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Principal map[string][]string            `json:"Principal,omitempty"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource,omitempty"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// JSON is the document's canonical bytes.
func (d Document) JSON() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(d)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// AWSRole is one generated role.
type AWSRole struct {
	Role        string   `json:"role"` // plan or apply
	Name        string   `json:"name"`
	ARN         string   `json:"arn"`
	Trust       Document `json:"trust"`
	Permissions Document `json:"permissions"`
	// Attached are the managed policies attached to the role.
	Attached []string `json:"attached"`
}

// AWSSet is everything generated for one environment on AWS.
type AWSSet struct {
	Provider    string    `json:"oidc_provider"` // its ARN
	ProviderURL string    `json:"oidc_provider_url"`
	Audiences   []string  `json:"audiences"`
	Roles       []AWSRole `json:"roles"`
}

func (s *Spec) partition() string {
	switch {
	case strings.HasPrefix(s.Region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(s.Region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// issuerHost is the issuer without its scheme: the OIDC provider's name in
// IAM and the prefix of its condition keys.
func (s *Spec) issuerHost() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.Issuer, "https://"), "/")
}

func (s *Spec) roleName(role string) string {
	p := s.AWS.RolePrefix
	if p == "" {
		p = DefaultRolePrefix
	}
	return p + "-" + s.Env + "-" + role
}

// subjects are the sub claims that may use role.
func (s *Spec) subjects(role string) []string {
	var out []string
	switch s.Provider {
	case "gitlab":
		base := "project_path:" + s.Repository + ":ref_type:"
		out = append(out, base+"tag:ref:*")
		if role == RolePlan {
			for _, r := range s.PlanRefs {
				if b, ok := strings.CutPrefix(r, "refs/heads/"); ok {
					out = append(out, base+"branch:ref:"+b)
				}
			}
		}
	default:
		base := "repo:" + s.Repository + ":"
		if role == RoleApply {
			return []string{base + "environment:" + s.Env}
		}
		out = append(out, base+"ref:refs/tags/*")
		for _, r := range s.PlanRefs {
			if r == "pull_request" {
				out = append(out, base+"pull_request")
			} else {
				out = append(out, base+"ref:"+r)
			}
		}
	}
	return out
}

// AWSDocuments generates the OIDC provider and the two roles of the spec's
// environment.
func AWSDocuments(s *Spec) AWSSet {
	part, acct := s.partition(), s.AWS.Account
	host := s.issuerHost()
	set := AWSSet{
		Provider:    "arn:" + part + ":iam::" + acct + ":oidc-provider/" + host,
		ProviderURL: s.Issuer,
		Audiences:   []string{s.Audience},
	}
	for _, role := range []string{RolePlan, RoleApply} {
		subOp := "StringLike"
		if s.Provider == "github" && role == RoleApply {
			subOp = "StringEquals"
		}
		cond := map[string]map[string][]string{
			"StringEquals": {host + ":aud": {s.Audience}},
		}
		if subOp == "StringEquals" {
			cond["StringEquals"][host+":sub"] = s.subjects(role)
		} else {
			cond[subOp] = map[string][]string{host + ":sub": s.subjects(role)}
		}
		trust := Document{Version: "2012-10-17", Statement: []Statement{{
			Sid: "CIWebIdentity", Effect: "Allow",
			Principal: map[string][]string{"Federated": {set.Provider}},
			Action:    []string{"sts:AssumeRoleWithWebIdentity"},
			Condition: cond,
		}}}
		if s.AWS.ToolingRole != "" {
			trust.Statement = append(trust.Statement, Statement{
				Sid: "ToolingAccount", Effect: "Allow",
				Principal: map[string][]string{"AWS": {s.AWS.ToolingRole}},
				Action:    []string{"sts:AssumeRole"},
			})
		}
		attached := s.AWS.PlanPolicies
		if role == RoleApply {
			attached = s.AWS.ApplyPolicies
		}
		name := s.roleName(role)
		set.Roles = append(set.Roles, AWSRole{
			Role: role, Name: name, ARN: "arn:" + part + ":iam::" + acct + ":role/" + name,
			Trust: trust, Permissions: s.awsPermissions(role), Attached: append([]string{}, attached...),
		})
	}
	return set
}

// awsPermissions is role's inline policy: the environment's state objects,
// its lock, its key.
func (s *Spec) awsPermissions(role string) Document {
	part := s.partition()
	bucket := "arn:" + part + ":s3:::" + s.Bucket
	objects := bucket + "/" + s.Prefix + "/*"
	stateKey := s.Prefix + "/terraform.tfstate"
	var st []Statement
	st = append(st, Statement{
		Sid: "ListStatePrefix", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucket},
		Condition: map[string]map[string][]string{"StringLike": {"s3:prefix": {s.Prefix + "/", s.Prefix + "/*"}}},
	})
	if role == RoleApply {
		st = append(st, Statement{Sid: "WriteState", Effect: "Allow", Action: []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, Resource: []string{objects}})
	} else {
		st = append(st, Statement{Sid: "ReadState", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{objects}})
	}
	switch s.Lock {
	case backend.LockDynamoDB:
		table := "arn:" + part + ":dynamodb:" + s.Region + ":" + s.AWS.Account + ":table/" + s.LockTable
		lockItem, digest := s.Bucket+"/"+stateKey, s.Bucket+"/"+stateKey+"-md5"
		leading := func(keys ...string) map[string]map[string][]string {
			return map[string]map[string][]string{"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": keys}}
		}
		if role == RoleApply {
			st = append(st, Statement{Sid: "StateLock", Effect: "Allow", Action: []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"}, Resource: []string{table}, Condition: leading(lockItem, digest)})
		} else {
			st = append(st,
				Statement{Sid: "ReadLockAndDigest", Effect: "Allow", Action: []string{"dynamodb:GetItem"}, Resource: []string{table}, Condition: leading(lockItem, digest)},
				Statement{Sid: "StateLock", Effect: "Allow", Action: []string{"dynamodb:DeleteItem", "dynamodb:PutItem"}, Resource: []string{table}, Condition: leading(lockItem)})
		}
	default:
		if role == RolePlan {
			st = append(st, Statement{Sid: "StateLock", Effect: "Allow", Action: []string{"s3:DeleteObject", "s3:PutObject"}, Resource: []string{bucket + "/" + stateKey + ".tflock"}})
		}
	}
	if s.KeyID != "" {
		actions := []string{"kms:Decrypt"}
		if role == RoleApply {
			actions = []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
		} else if s.Lock != backend.LockDynamoDB {
			// The lock file is written into the bucket, whose default
			// encryption is this key: writing it needs a data key.
			actions = []string{"kms:Decrypt", "kms:GenerateDataKey"}
		}
		st = append(st, Statement{Sid: "StateKey", Effect: "Allow", Action: actions, Resource: []string{s.KeyID}})
	}
	return Document{Version: "2012-10-17", Statement: st}
}
