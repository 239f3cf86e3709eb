// Command s3proxy runs the pinned S3 gateway on 127.0.0.1 with Object Lock
// buckets, and a reverse proxy in front of it that logs every request it
// passes on, so that a benchmark counts a program's requests from outside
// the program. It prints the gateway's credentials and both endpoints as
// shell assignments, then runs until it is interrupted or its parent exits.
//
//	go run ./bench/s3proxy -dir DIR -log DIR/requests.log BUCKET...
//
// Each request is one line of the log, written once the gateway has answered
// and before the handler returns (so before the client has the whole
// answer): the S3 operation, the object key (or listing prefix) without the
// bucket, and the microseconds the gateway took, separated by tabs, e.g.
// "GetObject\ttrail/entries/00000000000000000041\t412".
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/groundzero/groundzero/internal/s3gateway"
)

// operation names the S3 API call a request makes, from its method, path
// and query.
func operation(r *http.Request) string {
	q := r.URL.Query()
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	object := len(parts) == 2 && parts[1] != ""
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch r.Method {
	case http.MethodGet:
		switch {
		case object:
			return "GetObject"
		case has("versions"):
			return "ListObjectVersions"
		case q.Get("list-type") == "2":
			return "ListObjectsV2"
		case has("object-lock"):
			return "GetObjectLockConfiguration"
		case has("versioning"):
			return "GetBucketVersioning"
		case len(parts) == 1 && parts[0] != "":
			return "ListObjects"
		}
		return "GetOther"
	case http.MethodPut:
		if object {
			return "PutObject"
		}
		return "PutBucket"
	case http.MethodHead:
		if object {
			return "HeadObject"
		}
		return "HeadBucket"
	case http.MethodDelete:
		return "DeleteObject"
	case http.MethodPost:
		return "Post"
	}
	return r.Method
}

func main() {
	dir := flag.String("dir", "", "directory for the gateway's data")
	logPath := flag.String("log", "", "request log, one line per request")
	flag.Parse()
	if *dir == "" || *logPath == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: s3proxy -dir DIR -log FILE BUCKET...")
		os.Exit(2)
	}
	g, err := s3gateway.StartIn(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3proxy:", err)
		os.Exit(1)
	}
	defer g.Stop()
	for _, b := range flag.Args() {
		if err := g.CreateBucket(b, true); err != nil {
			fmt.Fprintln(os.Stderr, "s3proxy:", err)
			g.Stop()
			os.Exit(1)
		}
	}
	logf, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3proxy:", err)
		g.Stop()
		os.Exit(1)
	}
	upstream, _ := url.Parse(g.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(upstream)
	// Many concurrent clients: keep enough idle connections to the gateway.
	rp.Transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	var mu sync.Mutex
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/")
		if _, k, ok := strings.Cut(key, "/"); ok {
			key = k
		}
		if p := r.URL.Query().Get("prefix"); p != "" {
			key = p
		}
		op, start := operation(r), time.Now()
		rp.ServeHTTP(w, r)
		// The response's last bytes reach the client only when the handler
		// returns, so the line is in the log before the client has its answer.
		mu.Lock()
		fmt.Fprintf(logf, "%s\t%s\t%d\n", op, key, time.Since(start).Microseconds())
		mu.Unlock()
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3proxy:", err)
		g.Stop()
		os.Exit(1)
	}
	// Requests are signed for the host they were sent to; the proxy passes
	// the Host header on unchanged, so the gateway checks the signature
	// against the proxy's address.
	go http.Serve(l, handler)
	for _, kv := range s3gateway.Env() {
		fmt.Printf("export %s\n", kv)
	}
	fmt.Printf("GATEWAY=%s\nPROXY=http://%s\n", g.Endpoint, l.Addr())
	os.Stdout.Close() // the caller reads up to here
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// A script that dies without stopping the proxy leaves it an orphan;
	// it stops then too.
	parent := os.Getppid()
	for {
		select {
		case <-stop:
			return
		case <-time.After(500 * time.Millisecond):
			if os.Getppid() != parent {
				return
			}
		}
	}
}
