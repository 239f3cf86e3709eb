package parity

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// The governed capabilities allow no network host, so a schema annotation
// whose $ref names a URL is not fetched when the module is compiled. (OPA's
// type checker fetches such a $ref when allow_net is unset. ParseCustom does
// not process annotations today; this keeps the door shut if it ever does.)
func TestSchemaRefNotFetched(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{"type": "object"}`)
	}))
	defer srv.Close()
	src := fmt.Sprintf(`# METADATA
# schemas:
#   - input: {"$ref": %q}
package groundzero.custom

import rego.v1

deny contains "x" if input.x == 1
`, srv.URL+"/schema.json")
	m, err := ast.ParseModuleWithOpts("schema.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rego.New(
		rego.Query("data.groundzero.custom.deny"),
		rego.ParsedModule(m),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
	).PrepareForEval(context.Background())
	if err == nil {
		t.Errorf("a schema $ref to %s compiled; want it refused", srv.URL)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the schema server received %d request(s), want none", n)
	}
}
