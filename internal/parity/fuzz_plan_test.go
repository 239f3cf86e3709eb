package parity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/groundzero/groundzero/internal/parity"
)

// FuzzReadPlan: any input is read or refused with an error, never a
// panic, and reading once (a reader that cannot seek) and in two passes (a
// file) give the same resources.
func FuzzReadPlan(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "semantics", "*.txtar"))
	for _, file := range files {
		a, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range a.Files {
			if af.Name == "plan.json" {
				f.Add(af.Data)
			}
		}
	}
	plans, _ := filepath.Glob(filepath.Join("testdata", "plans", "*.json"))
	for _, p := range plans {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parity.ReadPlan(bytes.NewReader(data), nil)
		var streamed []parity.Resource
		serr := parity.StreamPlan(bytes.NewReader(data), nil, func(r parity.Resource) error {
			streamed = append(streamed, r)
			return nil
		})
		if (err == nil) != (serr == nil) {
			t.Fatalf("ReadPlan error %v, StreamPlan error %v", err, serr)
		}
		if err != nil {
			return
		}
		if len(in.Resources) == 0 && len(streamed) == 0 {
			return
		}
		if !reflect.DeepEqual(in.Resources, streamed) {
			t.Fatalf("ReadPlan = %+v\nStreamPlan = %+v", in.Resources, streamed)
		}
	})
}
