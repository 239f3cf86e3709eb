package tfconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateBlocks(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"backend.tf":      "terraform {\n  backend \"s3\" {}\n}\n",
		"main.tf":         "resource \"terraform_data\" \"x\" {}\n",
		"x_override.tf":   "terraform {\n  encryption {}\n}\n",
		"cloud.tf.json":   `{"terraform": {"cloud": {}}}`,
		"backend.tofu":    "# hides backend.tf from OpenTofu\n",
		".hidden.tf":      "terraform {\n  backend \"gcs\" {}\n}\n",
		"notes.txt":       "terraform { backend \"gcs\" {} }",
		"nested/inner.tf": "terraform {\n  backend \"gcs\" {}\n}\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	blocks, tofu, err := StateBlocks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		got = append(got, fmt.Sprintf("%s:%d %s %s", b.File, b.Line, b.Type, b.Label))
	}
	// OpenTofu's files first, then those only Terraform reads.
	want := "cloud.tf.json:1 cloud , x_override.tf:2 encryption , backend.tf:2 backend s3"
	if strings.Join(got, ", ") != want {
		t.Errorf("blocks = %s\nwant     %s", strings.Join(got, ", "), want)
	}
	if strings.Join(tofu, " ") != "backend.tofu cloud.tf.json main.tf x_override.tf" {
		t.Errorf("OpenTofu reads %v; backend.tofu must hide backend.tf", tofu)
	}
}

// BenchmarkStateBlocks scans a 200-file configuration for state blocks,
// as the backend gate does on every governed command.
func BenchmarkStateBlocks(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < 200; i++ {
		body := fmt.Sprintf("resource \"terraform_data\" \"r%d\" {\n  input = { name = \"r%d\" }\n}\n", i, i)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%03d.tf", i)), []byte(strings.Repeat(body, 10)), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "backend.tf"), []byte("terraform {\n  backend \"s3\" {}\n}\n"), 0o644)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := StateBlocks(dir); err != nil {
			b.Fatal(err)
		}
	}
}
