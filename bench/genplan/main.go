// Command genplan writes a plan JSON (the terraform-json schema, as `tofu
// show -json` writes it) with N AWS resources for the policy benchmarks.
// One resource in a hundred breaks a rule: a missing tag, a wrong region, or
// a bad name.
//
//	go run ./bench/genplan -n 10000 > plan.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	n := flag.Int("n", 10000, "resources")
	flag.Parse()
	var changes []any
	for i := 0; i < *n; i++ {
		tags := map[string]any{"owner": "platform", "env": "prod", "cost-center": "cc-1234"}
		bucket := fmt.Sprintf("acme-prod-data-%05d", i)
		after := map[string]any{"bucket": bucket, "force_destroy": false, "object_lock_enabled": false,
			"tags": map[string]any{"owner": "platform"}, "tags_all": tags}
		switch i % 100 {
		case 17:
			delete(tags, "owner")
		case 42:
			after["region"] = "us-east-1"
		case 73:
			after["bucket"] = "Bad_Name"
		}
		changes = append(changes, map[string]any{
			"address": fmt.Sprintf("aws_s3_bucket.data[%d]", i), "mode": "managed", "type": "aws_s3_bucket",
			"name": "data", "index": i, "provider_name": "registry.opentofu.org/hashicorp/aws",
			"change": map[string]any{"actions": []string{"create"}, "before": nil, "after": after,
				"after_unknown": map[string]any{"arn": true, "id": true}},
		})
	}
	plan := map[string]any{
		"format_version": "1.2", "terraform_version": "1.12.6",
		"planned_values":   map[string]any{"root_module": map[string]any{}},
		"resource_changes": changes,
		"configuration": map[string]any{
			"provider_config": map[string]any{"aws": map[string]any{"name": "aws", "full_name": "registry.opentofu.org/hashicorp/aws",
				"expressions": map[string]any{"region": map[string]any{"constant_value": "eu-west-1"}}}},
			"root_module": map[string]any{},
		},
	}
	if err := json.NewEncoder(os.Stdout).Encode(plan); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
