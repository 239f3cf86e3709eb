package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/groundzero/groundzero/internal/s3gateway"
)

// Commands that act on the script's S3 gateway directly, as someone with
// write access to the bucket would: the tampering that Object Lock does not
// prevent (T34).
func init() {
	commands["s3get"] = cmdS3Get
	commands["s3overwrite"] = cmdS3Overwrite
	commands["s3delete"] = cmdS3Delete
	commands["s3key"] = cmdS3Key
}

// gatewayClient returns an S3 client for the script's gateway.
func gatewayClient(ts *testscript.TestScript, usage string) *s3.Client {
	v, _ := gateways.Load(ts)
	g, _ := v.(*s3gateway.Gateway)
	if g == nil {
		ts.Fatalf("usage: %s (after s3gateway)", usage)
	}
	return g.Client()
}

func s3ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// s3get BUCKET KEY FILE writes the current version of an object to FILE.
func cmdS3Get(ts *testscript.TestScript, neg bool, args []string) {
	const use = "s3get BUCKET KEY FILE"
	if neg || len(args) != 3 {
		ts.Fatalf("usage: %s", use)
	}
	c := gatewayClient(ts, use)
	ctx, cancel := s3ctx()
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(args[0]), Key: aws.String(args[1])})
	ts.Check(err)
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), data, 0o644))
}

// s3overwrite BUCKET KEY FILE writes FILE over an object with a plain
// PutObject (no condition, no retention): on a versioned bucket a new
// current version, the retained original kept as an older one.
func cmdS3Overwrite(ts *testscript.TestScript, neg bool, args []string) {
	const use = "s3overwrite BUCKET KEY FILE"
	if neg || len(args) != 3 {
		ts.Fatalf("usage: %s", use)
	}
	c := gatewayClient(ts, use)
	data, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	ctx, cancel := s3ctx()
	defer cancel()
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(args[0]), Key: aws.String(args[1]), Body: bytes.NewReader(data)})
	ts.Check(err)
}

// s3delete BUCKET KEY deletes an object without a version id: on a
// versioned bucket a delete marker hides it, the retained version kept.
func cmdS3Delete(ts *testscript.TestScript, neg bool, args []string) {
	const use = "s3delete BUCKET KEY"
	if neg || len(args) != 2 {
		ts.Fatalf("usage: %s", use)
	}
	c := gatewayClient(ts, use)
	ctx, cancel := s3ctx()
	defer cancel()
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(args[0]), Key: aws.String(args[1])})
	ts.Check(err)
}

// s3key VAR BUCKET PREFIX [SUFFIX] sets $VAR to the last (in sorted order)
// current object key under PREFIX that ends with SUFFIX.
func cmdS3Key(ts *testscript.TestScript, neg bool, args []string) {
	const use = "s3key VAR BUCKET PREFIX [SUFFIX]"
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: %s", use)
	}
	suffix := ""
	if len(args) == 4 {
		suffix = args[3]
	}
	c := gatewayClient(ts, use)
	ctx, cancel := s3ctx()
	defer cancel()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(args[1]), Prefix: aws.String(args[2])})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		ts.Check(err)
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, suffix) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		ts.Fatalf("s3key: no object under %s/%s ends with %q", args[1], args[2], suffix)
	}
	sort.Strings(keys)
	ts.Setenv(args[0], keys[len(keys)-1])
}
