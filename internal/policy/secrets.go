package policy

import (
	"fmt"
	"path"
)

// Secrets holds the settings of the secret scan of the governed files.
type Secrets struct {
	// Waive accepts findings that review judged not to be credentials.
	Waive []SecretWaiver `yaml:"waive"`
}

// SecretWaiver accepts the findings of one secret-scan rule in one governed
// file (on one line, when Line is set), for a reason that review approved.
// The schema requires the reason.
type SecretWaiver struct {
	Rule   string `yaml:"rule"`
	Path   string `yaml:"path"`
	Line   int    `yaml:"line"`
	Reason string `yaml:"reason"`
}

func (s *Secrets) validate(file string) error {
	for i, w := range s.Waive {
		if path.Clean(w.Path) != w.Path {
			return &InvalidError{file, fmt.Sprintf("secrets.waive[%d].path %q is not a clean path", i, w.Path), "write the repository-relative path of a governed file, with no . or .. parts"}
		}
	}
	return nil
}
