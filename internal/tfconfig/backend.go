package tfconfig

import (
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// StateBlock is a block inside `terraform { … }` that decides where state
// lives or how it is encrypted: backend "KIND", cloud, or encryption.
type StateBlock struct {
	Type  string // "backend", "cloud" or "encryption"
	Label string // the backend kind, for backend
	File  string // base name of the file
	Line  int
}

var (
	terraformSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "terraform"}}}
	stateSchema     = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "backend", LabelNames: []string{"kind"}}, {Type: "cloud"}, {Type: "encryption"},
	}}
)

// StateBlocks returns every state block in the root module in dir, in the
// files OpenTofu reads and the files Terraform reads, and the names of the
// files OpenTofu reads (a name.tofu file hides name.tf from it).
func StateBlocks(dir string) (blocks []StateBlock, tofuFiles []string, err error) {
	w := &walker{parser: hclparse.NewParser()}
	tofu, terraform, err := w.views(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range tofu {
		tofuFiles = append(tofuFiles, filepath.Base(f.path))
	}
	seen := map[string]bool{}
	for _, f := range append(tofu, terraform...) {
		if seen[f.path] {
			continue
		}
		seen[f.path] = true
		file, err := w.parse(f.path)
		if err != nil {
			return nil, nil, err
		}
		content, _, diags := file.Body.PartialContent(terraformSchema)
		if diags.HasErrors() {
			return nil, nil, &SyntaxError{Diags: diags}
		}
		for _, tb := range content.Blocks {
			inner, _, diags := tb.Body.PartialContent(stateSchema)
			if diags.HasErrors() {
				return nil, nil, &SyntaxError{Diags: diags}
			}
			for _, b := range inner.Blocks {
				sb := StateBlock{Type: b.Type, File: filepath.Base(f.path), Line: b.DefRange.Start.Line}
				if len(b.Labels) > 0 {
					sb.Label = b.Labels[0]
				}
				blocks = append(blocks, sb)
			}
		}
	}
	return blocks, tofuFiles, nil
}
