package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/backend"
	"github.com/groundzero/groundzero/internal/govern"
	"github.com/groundzero/groundzero/internal/offline"
	"github.com/groundzero/groundzero/internal/repo"
)

func (a *app) drillCmd() *cobra.Command {
	var env, scratch, bundle, trustRoot, tfBinary string
	c := &cobra.Command{
		Use:   "drill --env ENV --scratch URL --bundle FILE",
		Short: "rehearse a rebuild into a scratch backend",
		Long: `drill rehearses the disaster recovery of an environment (ISO 27001:2013
A.17.1.3, 2022 A.5.30) without touching the real state store: it verifies
and restores the offline bundle FILE into a private temporary directory;
runs the static gates there, the signed release tag required, against the
authoritative evidence store the restored policy.yaml names; creates and
probes the scratch store URL (s3://BUCKET/PREFIX?endpoint=URL) as bootstrap
creates the real one; copies the newest state version from the real store
that the signed backend lock names into it; renders backend.tf for the
scratch store in the restored copy; and runs tofu init and tofu plan
-detailed-exitcode against it.

A plan without changes proves the bundle and the state rebuild each other.
A plan with changes is drift: drill exits 1. Either way the result is an
audit entry (action drill: environment, scratch store, bundle SHA-256, tag,
state serial and lineage, plan result) and the plan output is kept as an
artifact in the evidence store. The scratch store must be neither the real
state store nor the evidence store. The evidence store must be object
storage: a local store would live in the temporary copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case bundle == "":
				return usage(errors.New("--bundle is required"), "give the offline rebuild bundle (`groundzero bundle create`)")
			case scratch == "":
				return usage(errors.New("--scratch is required"), "name a scratch store: --scratch s3://BUCKET/PREFIX?endpoint=URL")
			}
			sc, err := govern.ParseScratch(scratch)
			if err != nil {
				return usage(err, "")
			}
			tmp, err := os.MkdirTemp("", "groundzero-drill-")
			if err != nil {
				return usage(err, "")
			}
			defer os.RemoveAll(tmp)
			dir := filepath.Join(tmp, "repo")
			rep, err := offline.Restore(a.ctx, bundle, dir, offline.VerifyConfig{Now: a.now, TrustRoot: a.trustRoot(trustRoot), TempDir: tmp})
			if err != nil {
				return bundleErr(err)
			}
			a.info("restored bundle %s (sha256 %.16s…) at tag %s into a temporary copy", bundle, rep.SHA256, rep.Tag)
			r := &repo.Repo{Root: dir}
			pol, err := a.loadPolicy(r)
			if err != nil {
				return err
			}
			if u, err := url.Parse(pol.Evidence.Store); err != nil || (u.Scheme != "s3" && u.Scheme != "gs") {
				return usage(fmt.Errorf("%s at tag %s names the evidence store %s; a drill records into object storage, and a local store would live in the temporary copy", repo.PolicyFile, rep.Tag, redactURL(pol.Evidence.Store)),
					"name object storage with Object Lock as evidence.store in governance/policy.yaml")
			}
			run, err := a.governedRun(r, env, "", tfBinary, trustRoot, false)
			if err != nil {
				return err
			}
			defer run.Close()
			if err := run.NeedEnv(); err != nil {
				return govErr(err)
			}
			req := govern.DrillRequest{Scratch: sc, BundleSHA256: rep.SHA256, Tag: rep.Tag, EvidenceStore: pol.Evidence.Store,
				Open: a.openBackend, State: s3Objects{}}
			if ok, err := run.Static(a.ctx, true, run.EnvName); !ok || err != nil {
				run.Note("drill", run.EnvName, govern.DrillDetails(run.EnvName, req, nil, "refused: a gate failed"))
				return a.finishRun(run, "text", err)
			}
			d, err := run.Drill(a.ctx, req)
			var drift *govern.DriftError
			result := "no drift"
			switch {
			case errors.As(err, &drift):
				result = "drift"
				err = failed(err, "the restored configuration and the restored state disagree: find which changed (an unapplied commit at the tag, or a change made outside OpenTofu) before relying on this bundle")
			case err != nil:
				result = "failed: " + err.Error()
				if !errors.As(err, new(*govern.UsageError)) {
					err = failed(err, "")
				}
			case run.Failed():
				result = "refused: a gate failed"
			}
			run.Note("drill", run.EnvName, govern.DrillDetails(run.EnvName, req, d, result))
			if ferr := a.finishRun(run, "text", err); ferr != nil {
				if d != nil && d.Artifact != "" {
					fmt.Fprintf(a.stdout, "drill of environment %s: %s; plan output kept as artifact %s\n", run.EnvName, result, d.Artifact)
				}
				return ferr
			}
			fmt.Fprintf(a.stdout, "drill of environment %s: no drift; tag %s rebuilt into %s from state serial %d (lineage %s); plan output kept as artifact %s\n",
				run.EnvName, rep.Tag, sc.URL, d.Serial, d.Lineage, d.Artifact)
			return nil
		},
	}
	c.Flags().StringVar(&env, "env", "", "environment (default: the only one)")
	c.Flags().StringVar(&scratch, "scratch", "", "the scratch store `URL`: s3://BUCKET/PREFIX[?endpoint=URL&region=NAME]")
	c.Flags().StringVar(&bundle, "bundle", "", "the offline rebuild bundle `FILE`")
	c.Flags().StringVar(&tfBinary, "tf-binary", "", "OpenTofu binary (default GROUNDZERO_TF_BINARY, then tofu on PATH)")
	trustRootFlag(c, &trustRoot)
	return c
}

// maxState bounds the state object a drill copies.
const maxState = 512 << 20

// s3Objects reads and writes state objects over the S3 API, addressed as
// the backend package addresses the store (path-style for minio and
// loopback endpoints), with the SDK's default credentials.
type s3Objects struct{}

func (s3Objects) client(ctx context.Context, spec backend.Spec) (*awss3.Client, error) {
	region := spec.Region
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %v", err)
	}
	pathStyle := spec.Kind == backend.KindMinIO || spec.Kind == backend.KindOCI
	if spec.Endpoint != "" {
		u, err := url.Parse(spec.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("endpoint %q is not a URL", spec.Endpoint)
		}
		ip := net.ParseIP(u.Hostname())
		pathStyle = pathStyle || u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if spec.Endpoint != "" {
			o.BaseEndpoint = aws.String(spec.Endpoint)
		}
		o.UsePathStyle = pathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

func (s s3Objects) Get(ctx context.Context, spec backend.Spec, key string) ([]byte, string, error) {
	c, err := s.client(ctx, spec)
	if err != nil {
		return nil, "", err
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(spec.Bucket), Key: aws.String(key)})
	var missing *s3types.NoSuchKey
	if errors.As(err, &missing) {
		return nil, "", fmt.Errorf("%w: %v", govern.ErrNoState, err)
	}
	if err != nil {
		return nil, "", err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxState+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxState {
		return nil, "", fmt.Errorf("the state object is larger than %d bytes", maxState)
	}
	return data, strings.TrimSpace(aws.ToString(out.VersionId)), nil
}

func (s s3Objects) Put(ctx context.Context, spec backend.Spec, key string, data []byte) error {
	c, err := s.client(ctx, spec)
	if err != nil {
		return err
	}
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(spec.Bucket), Key: aws.String(key), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	return err
}
