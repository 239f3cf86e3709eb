package atomicfile_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/atomicfile"
)

const size = 1 << 20

// The test binary doubles as a writer: GZ_ATOMIC_WRITER=PATH rewrites PATH
// with 1 MiB of 'a', then of 'b', and so on, until killed.
func TestMain(m *testing.M) {
	if p := os.Getenv("GZ_ATOMIC_WRITER"); p != "" {
		for i := 0; ; i++ {
			c := byte('a' + i%2)
			if err := atomicfile.Write(p, bytes.Repeat([]byte{c}, size), 0o644); err != nil {
				os.Exit(1)
			}
		}
	}
	os.Exit(m.Run())
}

// T23: a writer killed at any moment leaves the old or the new contents,
// never an empty or mixed file.
func TestKilledWriterLeavesOldOrNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "record.json")
	if err := atomicfile.Write(p, bytes.Repeat([]byte{'a'}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	iterations := 20
	if v, err := strconv.Atoi(os.Getenv("GZ_CRASH_ITERATIONS")); err == nil {
		iterations = v
	}
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GZ_ATOMIC_WRITER="+p)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1+rand.IntN(30)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != size || (!bytes.Equal(data, bytes.Repeat([]byte{'a'}, size)) && !bytes.Equal(data, bytes.Repeat([]byte{'b'}, size))) {
			t.Fatalf("iteration %d: file holds %d bytes of mixed or partial content", i, len(data))
		}
	}
}

func TestWriteReplacesAndSetsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"one", "two"} {
		if err := atomicfile.Write(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		if string(got) != content {
			t.Fatalf("Write(%q) left %q", content, got)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the target", len(entries))
	}
}
