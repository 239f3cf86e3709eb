// Package gcsfake runs the pinned fake-gcs-server on 127.0.0.1 for tests: a
// Google Cloud Storage JSON API with generation preconditions and object
// versioning, kept in memory and stopped when the test ends.
//
// It does not enforce retention: bucket retention policies and object
// retention lock are not kept at all on buckets, and an object's retention
// is stored and echoed but never refuses a delete or an overwrite.
package gcsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/groundzero/groundzero/internal/pinned"
)

// Server is a running fake-gcs-server.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT, the root of the JSON API
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Start runs a server for the test, or fails it with a hint.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartIn runs a server whose log (and empty seed directory) lives in dir;
// the caller stops it.
func StartIn(dir string) (*Server, error) {
	bin, err := pinned.Path("fake-gcs-server")
	if err != nil {
		return nil, err
	}
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	// Without -public-host the server misses reads addressed to it by the
	// name it is reached at.
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(addr.Port),
		"-public-host", addr.String(), "-backend", "memory", "-data", seed, "-log-level", "warn")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	// The server dies with the process that started it, even one killed
	// before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "fake-gcs-server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://" + addr.String(), cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(s.Endpoint + "/_internal/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("fake-gcs-server did not start on %s: %s", addr, log)
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("fake-gcs-server exited before serving on %s: %s", addr, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server.
func (s *Server) Stop() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Bucket creates a bucket, keeping noncurrent generations when versioned is
// set.
func (s *Server) Bucket(t testing.TB, name string, versioned bool) {
	t.Helper()
	if err := s.CreateBucket(context.Background(), name, versioned); err != nil {
		t.Fatal(err)
	}
}

// CreateBucket creates a bucket through the JSON API (buckets.insert).
func (s *Server) CreateBucket(ctx context.Context, name string, versioned bool) error {
	body, _ := json.Marshal(map[string]any{"name": name, "versioning": map[string]bool{"enabled": versioned}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/storage/v1/b?project=test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("create bucket %s: %s: %s", name, resp.Status, msg)
	}
	return nil
}

// URL returns a gs:// store URL for bucket/prefix on this server.
func (s *Server) URL(bucket, prefix string) string {
	return fmt.Sprintf("gs://%s/%s?endpoint=%s", bucket, prefix, s.Endpoint)
}
