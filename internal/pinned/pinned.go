// Package pinned finds the pinned helper programs that scripts/tools builds
// into .tools/bin (OpenTofu, the Versity S3 gateway, fake-gcs-server), for
// tests and the demo.
package pinned

import (
	"fmt"
	"os"
	"path/filepath"
)

// Versions pinned by scripts/tools.
const (
	TofuVersion      = "v1.12.6"
	VersitygwVersion = "v1.8.0"
)

// Dir returns the .tools/bin directory of the module containing the working
// directory (tests run inside their package directory).
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".tools", "bin"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Path returns the path of a pinned program, or an error that says how to
// install it.
func Path(name string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not installed in %s: run `make tools` (scripts/tools)", name, dir)
	}
	return p, nil
}
