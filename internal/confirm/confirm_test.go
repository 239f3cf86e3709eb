package confirm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/groundzero/groundzero/internal/confirm"
)

func TestConfirm(t *testing.T) {
	cases := map[string]bool{
		"dev-1a2b3c\nAPPLY\n":     true,
		"dev-1a2b3c\nAPPLY":       true,
		"dev-1a2b3c\napply\n":     false,
		"dev-1a2b3d\nAPPLY\n":     false,
		"dev-1a2b3c\n":            false,
		"":                        false,
		" dev-1a2b3c\nAPPLY\n":    false,
		"dev-1a2b3c\nAPPLY \n":    false,
		"dev-1a2b3c\r\nAPPLY\r\n": true,
	}
	for in, ok := range cases {
		var out strings.Builder
		err := confirm.New(strings.NewReader(in), &out).Confirm("Plan: 1 to add", "dev-1a2b3c")
		var ab *confirm.AbortError
		if ok && err != nil || !ok && !errors.As(err, &ab) {
			t.Errorf("Confirm(%q) = %v, want ok=%v", in, err, ok)
		}
		if !strings.Contains(out.String(), "dev-1a2b3c") {
			t.Errorf("prompt does not show the token: %q", out.String())
		}
	}
}
