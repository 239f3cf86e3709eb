// Command genplan writes plan JSON (the terraform-json schema, as `tofu show
// -json` writes it) with N resources for the policy benchmarks. Each
// resource appears as OpenTofu shows it: in planned_values, in
// resource_changes (before, after, after_unknown, the sensitivity masks)
// and in configuration with its expressions, about 1.8 KB per resource.
//
// The mix: S3 buckets, EC2 instances (named by their Name tag), KMS keys
// with aliases, buckets in a module whose provider takes its region from a
// variable, buckets on an aliased provider in another region, a resource
// whose tags are unknown until apply, forgotten resources (removed with
// destroy = false), and a few DNS records and IAM access keys. About one
// resource in thirty breaks a rule.
//
//	go run ./bench/genplan -n 10000 > plan.json
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

type resource struct {
	module   string // "" or module name
	typ      string
	name     string
	index    int
	actions  []string
	after    map[string]any
	unknown  map[string]any
	provider string // provider_config_key in configuration
}

func (r resource) address() string {
	a := fmt.Sprintf("%s.%s", r.typ, r.name)
	if r.module != "" {
		a = fmt.Sprintf("module.%s[\"eu\"].%s", r.module, a)
	}
	return a
}

func bucket(name string, tags map[string]any) map[string]any {
	all := map[string]any{"env": "prod", "cost-center": "cc-1234"}
	for k, v := range tags {
		all[k] = v
	}
	return map[string]any{
		"acceleration_status": nil, "bucket": name, "bucket_prefix": nil, "force_destroy": false,
		"object_lock_enabled": false, "tags": tags, "tags_all": all, "timeouts": nil,
	}
}

var bucketUnknown = map[string]any{
	"arn": true, "bucket_domain_name": true, "bucket_regional_domain_name": true, "cors_rule": true,
	"grant": true, "hosted_zone_id": true, "id": true, "lifecycle_rule": true, "logging": true,
	"object_lock_configuration": true, "policy": true, "region": true, "replication_configuration": true,
	"request_payer": true, "server_side_encryption_configuration": true, "tags": map[string]any{}, "tags_all": map[string]any{},
	"versioning": true, "website": true, "website_domain": true, "website_endpoint": true,
}

func instance(name string) map[string]any {
	return map[string]any{
		"ami": "ami-0c55b159cbfafe1f0", "instance_type": "t3.micro", "associate_public_ip_address": nil,
		"credit_specification": []any{}, "get_password_data": false, "hibernation": nil, "source_dest_check": true,
		"tags": map[string]any{"Name": name, "owner": "platform"}, "tags_all": map[string]any{"Name": name, "owner": "platform", "env": "prod", "cost-center": "cc-1234"},
		"timeouts": nil, "user_data_replace_on_change": false, "volume_tags": nil,
	}
}

var instanceUnknown = map[string]any{
	"arn": true, "availability_zone": true, "capacity_reservation_specification": true, "cpu_core_count": true,
	"ebs_block_device": true, "enclave_options": true, "ephemeral_block_device": true, "host_id": true,
	"id": true, "instance_state": true, "ipv6_addresses": true, "key_name": true, "metadata_options": true,
	"network_interface": true, "primary_network_interface_id": true, "private_dns": true, "private_ip": true,
	"public_dns": true, "public_ip": true, "root_block_device": true, "security_groups": true, "subnet_id": true,
	"tags": map[string]any{}, "tags_all": map[string]any{}, "tenancy": true, "vpc_security_group_ids": true,
}

func generate(i int) resource {
	r := kind(i)
	r.name = fmt.Sprintf("%s_%06d", r.name, i)
	return r
}

func kind(i int) resource {
	owner := map[string]any{"owner": "platform"}
	switch {
	case i%100 == 17: // a missing tag
		return resource{typ: "aws_s3_bucket", name: "data", index: i, actions: []string{"create"},
			after: bucket(fmt.Sprintf("acme-prod-data-%06d", i), map[string]any{}), unknown: bucketUnknown, provider: "aws"}
	case i%100 == 42: // the aliased provider in us-east-1
		return resource{typ: "aws_s3_bucket", name: "replica", index: i, actions: []string{"create"},
			after: bucket(fmt.Sprintf("acme-prod-replica-%06d", i), owner), unknown: bucketUnknown, provider: "aws.us"}
	case i%100 == 73: // a bad name
		return resource{typ: "aws_s3_bucket", name: "data", index: i, actions: []string{"create"},
			after: bucket(fmt.Sprintf("Bad_Name_%06d", i), owner), unknown: bucketUnknown, provider: "aws"}
	case i%100 == 55: // tags unknown until apply
		after := bucket(fmt.Sprintf("acme-prod-data-%06d", i), map[string]any{})
		delete(after, "tags_all")
		unknown := map[string]any{}
		for k, v := range bucketUnknown {
			unknown[k] = v
		}
		unknown["tags"] = map[string]any{"owner": true}
		unknown["tags_all"] = true
		after["tags"] = map[string]any{}
		return resource{typ: "aws_s3_bucket", name: "data", index: i, actions: []string{"create"}, after: after, unknown: unknown, provider: "aws"}
	case i%100 == 91: // forgotten, not created
		return resource{typ: "aws_s3_bucket", name: "old", index: i, actions: []string{"forget"}, provider: "aws"}
	case i%1000 == 500:
		return resource{typ: "aws_route53_record", name: "www", index: i, actions: []string{"create"},
			after:   map[string]any{"name": "www.example.com", "type": "A", "ttl": 300, "records": []any{"192.0.2.1"}},
			unknown: map[string]any{"id": true, "fqdn": true, "zone_id": true}, provider: "aws"}
	case i%1000 == 501:
		return resource{typ: "aws_iam_access_key", name: "ci", index: i, actions: []string{"create"},
			after:   map[string]any{"pgp_key": nil, "status": "Active", "user": "ci"},
			unknown: map[string]any{"id": true, "secret": true, "ses_smtp_password_v4": true, "create_date": true}, provider: "aws"}
	case i%10 == 1:
		return resource{typ: "aws_instance", name: "web", index: i, actions: []string{"create"},
			after: instance(fmt.Sprintf("acme-prod-web-%06d", i)), unknown: instanceUnknown, provider: "aws"}
	case i%10 == 2:
		return resource{typ: "aws_kms_key", name: "k", index: i, actions: []string{"create"},
			after: map[string]any{"bypass_policy_lockout_safety_check": false, "custom_key_store_id": nil, "customer_master_key_spec": "SYMMETRIC_DEFAULT",
				"deletion_window_in_days": 30, "enable_key_rotation": true, "is_enabled": true, "key_usage": "ENCRYPT_DECRYPT",
				"tags": owner, "tags_all": map[string]any{"owner": "platform", "env": "prod", "cost-center": "cc-1234"}, "timeouts": nil},
			unknown:  map[string]any{"arn": true, "description": true, "id": true, "key_id": true, "multi_region": true, "policy": true, "rotation_period_in_days": true, "tags": map[string]any{}, "tags_all": map[string]any{}},
			provider: "aws"}
	case i%10 == 3:
		return resource{typ: "aws_kms_alias", name: "k", index: i, actions: []string{"create"},
			after:    map[string]any{"name": fmt.Sprintf("alias/acme-prod-key-%06d", i), "name_prefix": nil},
			unknown:  map[string]any{"arn": true, "id": true, "target_key_arn": true, "target_key_id": true},
			provider: "aws"}
	case i%10 == 4: // in a module whose provider's region is a variable
		return resource{module: "regional", typ: "aws_s3_bucket", name: "b", index: i, actions: []string{"create"},
			after: bucket(fmt.Sprintf("acme-prod-regional-%06d", i), owner), unknown: bucketUnknown, provider: "module.regional:aws"}
	}
	return resource{typ: "aws_s3_bucket", name: "data", index: i, actions: []string{"create"},
		after: bucket(fmt.Sprintf("acme-prod-data-%06d", i), owner), unknown: bucketUnknown, provider: "aws"}
}

func main() {
	n := flag.Int("n", 10000, "resources")
	flag.Parse()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(w)
	put := func(s string) { w.WriteString(s) }
	value := func(v any) {
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	list := func(key string, f func(r resource) any) {
		put(`"` + key + `":[`)
		first := true
		for i := 0; i < *n; i++ {
			r := generate(i)
			v := f(r)
			if v == nil {
				continue
			}
			if !first {
				put(",")
			}
			first = false
			value(v)
		}
		put("]")
	}
	put(`{"format_version":"1.2","terraform_version":"1.12.6",`)
	put(`"variables":{"secondary_region":{"value":"eu-west-1"}},`)
	put(`"planned_values":{"root_module":{`)
	list("resources", func(r resource) any {
		if r.after == nil {
			return nil
		}
		return map[string]any{"address": r.address(), "mode": "managed", "type": r.typ, "name": r.name,
			"provider_name": "registry.opentofu.org/hashicorp/aws", "schema_version": 0, "values": r.after,
			"sensitive_values": map[string]any{"tags": map[string]any{}, "tags_all": map[string]any{}}}
	})
	put(`}},`)
	list("resource_changes", func(r resource) any {
		rc := map[string]any{"address": r.address(), "mode": "managed", "type": r.typ, "name": r.name,
			"provider_name": "registry.opentofu.org/hashicorp/aws",
			"change": map[string]any{"actions": r.actions, "before": nil, "after": r.after, "after_unknown": r.unknown,
				"before_sensitive": false, "after_sensitive": map[string]any{"tags": map[string]any{}, "tags_all": map[string]any{}}}}
		if r.module != "" {
			rc["module_address"] = fmt.Sprintf("module.%s[\"eu\"]", r.module)
		}
		if r.after == nil {
			ch := rc["change"].(map[string]any)
			ch["before"] = bucket("acme-prod-old", map[string]any{"owner": "platform"})
			ch["after_unknown"] = map[string]any{}
		}
		return rc
	})
	put(`,"configuration":{"provider_config":`)
	value(map[string]any{
		"aws": map[string]any{"name": "aws", "full_name": "registry.opentofu.org/hashicorp/aws",
			"expressions": map[string]any{"region": map[string]any{"constant_value": "eu-west-1"},
				"default_tags": []any{map[string]any{"tags": map[string]any{"constant_value": map[string]any{"env": "prod", "cost-center": "cc-1234"}}}}}},
		"aws.us": map[string]any{"name": "aws", "alias": "us", "full_name": "registry.opentofu.org/hashicorp/aws",
			"expressions": map[string]any{"region": map[string]any{"constant_value": "us-east-1"}}},
		"module.regional:aws": map[string]any{"name": "aws", "full_name": "registry.opentofu.org/hashicorp/aws", "module_address": "module.regional",
			"expressions": map[string]any{"region": map[string]any{"references": []any{"var.region"}},
				"default_tags": []any{map[string]any{"tags": map[string]any{"constant_value": map[string]any{"env": "prod", "cost-center": "cc-1234"}}}}}},
	})
	config := func(r resource) any {
		if r.after == nil {
			return nil
		}
		exprs := map[string]any{}
		for k, v := range r.after {
			if v != nil {
				exprs[k] = map[string]any{"constant_value": v}
			}
		}
		delete(exprs, "tags_all")
		return map[string]any{"address": r.typ + "." + r.name, "mode": "managed", "type": r.typ, "name": r.name,
			"provider_config_key": r.provider, "expressions": exprs, "schema_version": 0}
	}
	put(`,"root_module":{`)
	list("resources", func(r resource) any {
		if r.module != "" {
			return nil
		}
		return config(r)
	})
	put(`,"module_calls":{"regional":{"source":"./modules/regional","expressions":{"region":{"references":["var.secondary_region"]}},`)
	put(`"for_each_expression":{"constant_value":{"eu":true}},"module":{`)
	list("resources", func(r resource) any {
		if r.module == "" {
			return nil
		}
		return config(r)
	})
	put(`,"variables":{"region":{}}}}},`)
	put(`"variables":{"secondary_region":{}}}},"timestamp":"2026-11-25T00:00:00Z","errored":false}` + "\n")
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
