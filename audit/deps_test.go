package audit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The public packages are for outside verifiers: they may import only the
// standard library, golang.org/x/crypto and golang.org/x/mod, and each other.
func TestPublicPackagesImportsArePinned(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/groundzero/groundzero/audit", "github.com/groundzero/groundzero/record").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"github.com/groundzero/groundzero/audit", "github.com/groundzero/groundzero/record", "golang.org/x/crypto/", "golang.org/x/mod/"}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("public package depends on %s", dep)
		}
	}
}
