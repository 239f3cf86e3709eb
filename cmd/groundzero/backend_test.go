package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/gcsfake"
	"github.com/groundzero/groundzero/internal/s3gateway"
)

// Commands for the state store tests, on the script's gateway.
func init() {
	commands["s3versioning"] = cmdS3Versioning
	commands["s3object"] = cmdS3Object
	commands["s3ignoreinm"] = cmdS3IgnoreINM
	commands["gcsfake"] = cmdGCSFake
}

// gcsfake starts the pinned fake-gcs-server for the rest of the script and
// sets $GCS_ENDPOINT, STORAGE_EMULATOR_HOST (how the storage client finds
// it) and a dummy access token for OpenTofu's gcs backend.
func cmdGCSFake(ts *testscript.TestScript, neg bool, args []string) {
	s, err := gcsfake.StartIn(filepath.Join(ts.Getenv("WORK"), ".gcsfake"))
	ts.Check(err)
	ts.Defer(s.Stop)
	ts.Setenv("GCS_ENDPOINT", s.Endpoint)
	ts.Setenv("STORAGE_EMULATOR_HOST", s.Endpoint)
	ts.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "fake-gcs-server-needs-no-token")
}

// s3versioning BUCKET on|off turns a bucket's versioning on, or suspends
// it, as someone with bucket rights could behind groundzero's back.
func cmdS3Versioning(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
		ts.Fatalf("usage: s3versioning BUCKET on|off")
	}
	c := gatewayClient(ts, "s3versioning BUCKET on|off")
	status := s3types.BucketVersioningStatusEnabled
	if args[1] == "off" {
		status = s3types.BucketVersioningStatusSuspended
	}
	_, err := c.PutBucketVersioning(context.Background(), &awss3.PutBucketVersioningInput{
		Bucket: aws.String(args[0]), VersioningConfiguration: &s3types.VersioningConfiguration{Status: status},
	})
	ts.Check(err)
}

// s3object BUCKET KEY [TEXT] checks that the object exists (and holds TEXT);
// with ! that it does not.
func cmdS3Object(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: s3object BUCKET KEY [TEXT]")
	}
	c := gatewayClient(ts, "s3object BUCKET KEY [TEXT]")
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(args[0]), Key: aws.String(args[1])})
	if err != nil {
		if !neg {
			ts.Fatalf("s3://%s/%s: %v", args[0], args[1], err)
		}
		return
	}
	body, err := io.ReadAll(out.Body)
	out.Body.Close()
	ts.Check(err)
	found := len(args) < 3 || bytes.Contains(body, []byte(args[2]))
	if found == neg {
		ts.Fatalf("s3://%s/%s exists (%d bytes)%s", args[0], args[1], len(body), map[bool]string{true: ", unexpectedly", false: " without " + strings.Join(args[2:], "")}[neg])
	}
}

// s3ignoreinm starts a proxy in front of the gateway that behaves like a
// store ignoring If-None-Match (T28): a conditional PUT that the gateway
// refuses because the object exists is answered 200 OK, as a store that
// overwrote it would answer. It sets $S3_INM_ENDPOINT.
func cmdS3IgnoreINM(ts *testscript.TestScript, neg bool, args []string) {
	v, _ := gateways.Load(ts)
	g, _ := v.(*s3gateway.Gateway)
	if g == nil {
		ts.Fatalf("usage: s3ignoreinm (after s3gateway)")
	}
	target, err := url.Parse(g.Endpoint)
	ts.Check(err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" && resp.StatusCode == http.StatusPreconditionFailed {
			resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
			resp.Body = io.NopCloser(strings.NewReader(""))
			resp.ContentLength = 0
			resp.Header.Del("Content-Length")
			resp.Header.Set("ETag", `"ignored-if-none-match"`)
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("S3_INM_ENDPOINT", "http://"+l.Addr().String())
}
