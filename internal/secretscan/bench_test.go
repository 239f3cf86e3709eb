package secretscan_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/manifest"
	"github.com/groundzero/groundzero/internal/policy"
	"github.com/groundzero/groundzero/internal/secretscan"
)

// module renders one realistic OpenTofu file of about 4 KiB: providers,
// variables with descriptions, resources with tags, references to a secret
// store, and comments.
func module(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Module %d: storage and access for service %d.\n", i, i)
	fmt.Fprintf(&b, "variable \"region_%d\" {\n  type        = string\n  description = \"Region the bucket lives in.\"\n  default     = \"eu-west-1\"\n}\n\n", i)
	for j := 0; j < 6; j++ {
		fmt.Fprintf(&b, "resource \"aws_s3_bucket\" \"b%d_%d\" {\n  bucket = \"acme-prod-%d-%d\"\n  tags = {\n    owner       = \"platform\"\n    cost_center = \"cc-%04d\"\n    environment = \"prod\"\n  }\n}\n\n", i, j, i, j, i)
	}
	fmt.Fprintf(&b, "data \"aws_secretsmanager_secret_version\" \"db_%d\" {\n  secret_id = \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-%d\"\n}\n\n", i, i)
	fmt.Fprintf(&b, "resource \"aws_db_instance\" \"db_%d\" {\n  engine   = \"postgres\"\n  username = \"app\"\n  password = data.aws_secretsmanager_secret_version.db_%d.secret_string\n  kms_key_id = \"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-%012d\"\n}\n", i, i, i)
	return b.String()
}

// BenchmarkScan scans a repository of realistic size for a control plane:
// 1,000 OpenTofu files of about 4 KiB each, plus the governance files,
// enumerated as check enumerates them.
func BenchmarkScan(b *testing.B) {
	files := map[string]string{"governance/policy.yaml": string(policy.Template("s3", "prod", "s3://evidence/trail"))}
	for i := 0; i < 1000; i++ {
		files[fmt.Sprintf("infra/bootstrap/modules/m%03d/main.tf", i)] = module(i)
	}
	r := writeRepo(b, files)
	paths, err := manifest.Governed(r)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range files {
		size += int64(len(f))
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		got, err := secretscan.Scan(context.Background(), r, paths)
		if err != nil || len(got) != 0 {
			b.Fatalf("Scan = %v, %v; want no finding", got, err)
		}
	}
}
