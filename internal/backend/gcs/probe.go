package gcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"cloud.google.com/go/storage"

	"github.com/groundzero/groundzero/internal/backend"
)

// Probe checks what the bucket does, in the order of backend.Probes. It
// writes two objects under PREFIX/.groundzero-probe/ and deletes every
// generation it made (where a retention policy lets it). A capability the
// bucket lacks is a result; an error means the bucket is missing or could
// not be reached. On error, the calls returned are those made until then.
func (s *Store) Probe(ctx context.Context) ([]backend.ProbeResult, []backend.Call, error) {
	var c calls
	attrs, err := s.readBucket(ctx, &c)
	if err != nil {
		return nil, c, err
	}
	p := &prober{s: s, c: &c, written: map[string][]int64{}}
	var tag [8]byte
	rand.Read(tag[:])
	dir := path.Join(strings.Trim(s.spec.Prefix, "/"), ".groundzero-probe", hex.EncodeToString(tag[:]))

	got := map[string]backend.ProbeResult{}
	add := func(name string, ok bool, format string, args ...any) {
		got[name] = backend.ProbeResult{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
	}

	cw, err := p.conditionalWrite(ctx, dir+"/conditional-write")
	if err != nil {
		return nil, c, err
	}
	got[backend.ProbeConditionalWrite] = cw
	ad, kept, err := p.afterDelete(ctx, dir+"/after-delete", attrs.VersioningEnabled)
	if err != nil {
		return nil, c, err
	}
	got[backend.ProbeConditionalAfterMark] = ad
	if err := p.cleanUp(ctx); err != nil {
		return nil, c, err
	}

	switch {
	case !attrs.VersioningEnabled:
		add(backend.ProbeVersioning, false, "object versioning is off")
	case kept == "":
		add(backend.ProbeVersioning, true, "object versioning is on (the probe could not check that a deleted generation is kept)")
	case kept != "yes":
		add(backend.ProbeVersioning, false, "object versioning is on, but %s", kept)
	default:
		add(backend.ProbeVersioning, true, "object versioning is on: a deleted generation is kept")
	}

	var defaultKey string
	if attrs.Encryption != nil {
		defaultKey = attrs.Encryption.DefaultKMSKeyName
	}
	switch {
	case defaultKey != "":
		add(backend.ProbeEncryption, true, "default KMS key %s", defaultKey)
	case s.keyName != "":
		add(backend.ProbeEncryption, false, "no default KMS key (objects get Google-managed encryption only)")
	default:
		add(backend.ProbeEncryption, true, "Google-managed encryption at rest; key provider %s asks for no default KMS key", s.spec.Key.Provider)
	}

	rp := attrs.RetentionPolicy
	switch {
	case rp != nil && rp.IsLocked && rp.RetentionPeriod > 0:
		add(backend.ProbeObjectLock, true, "locked retention policy of %s", rp.RetentionPeriod)
	case attrs.ObjectRetentionMode == "Enabled":
		add(backend.ProbeObjectLock, true, "object retention is enabled")
	case rp != nil && rp.RetentionPeriod > 0:
		add(backend.ProbeObjectLock, false, "retention policy of %s is not locked, and object retention is off", rp.RetentionPeriod)
	default:
		add(backend.ProbeObjectLock, false, "no retention policy, and object retention is off")
	}

	if missing := missingLabels(s.labels, attrs.Labels); len(missing) > 0 {
		add(backend.ProbeCreateTags, false, "labels missing or changed: %s", strings.Join(missing, "; "))
	} else if len(s.labels) == 0 {
		add(backend.ProbeCreateTags, true, "no tags asked for")
	} else {
		add(backend.ProbeCreateTags, true, "all %d labels present", len(s.labels))
	}

	pap := attrs.PublicAccessPrevention == storage.PublicAccessPreventionEnforced
	ubla := attrs.UniformBucketLevelAccess.Enabled
	add(backend.ProbePublicAccessBlock, pap && ubla, "public access prevention %s, uniform bucket-level access %s", attrs.PublicAccessPrevention, onOff(ubla))

	out := make([]backend.ProbeResult, 0, len(backend.Probes))
	for _, name := range backend.Probes {
		if r, ok := got[name]; ok {
			out = append(out, r)
		}
	}
	return out, c, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// missingLabels lists the wanted labels absent from or different in have.
func missingLabels(want, have map[string]string) []string {
	var out []string
	for k, v := range want {
		got, ok := have[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s is missing", k))
		case got != v:
			out = append(out, fmt.Sprintf("%s is %q, want %q", k, got, v))
		}
	}
	slices.Sort(out)
	return out
}

// readBucket reads the bucket's settings, or says it is missing.
func (s *Store) readBucket(ctx context.Context, c *calls) (*storage.BucketAttrs, error) {
	tctx, rid := traced(ctx)
	attrs, err := s.bucket.Attrs(tctx)
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		c.storage("buckets.get", s.selfLink, rid, outcomeMissing)
		return nil, fmt.Errorf("gcs: bucket %s does not exist: %w", s.spec.Bucket, err)
	case err != nil:
		c.storage("buckets.get", s.selfLink, rid, outcomeFailed)
		return nil, fmt.Errorf("gcs: read bucket %s: %w", s.spec.Bucket, err)
	}
	c.storage("buckets.get", s.selfLink, rid, "read")
	return attrs, nil
}

// prober writes the probe's objects and remembers each generation made.
type prober struct {
	s       *Store
	c       *calls
	written map[string][]int64
	order   []string
}

func (p *prober) objectLink(name string) string {
	return p.s.selfLink + "/o/" + url.PathEscape(name)
}

// create writes the object only if it does not exist (ifGenerationMatch=0).
// A refusal by the service is returned as it is; refused reports a 412.
func (p *prober) create(ctx context.Context, name string) (refused bool, err error) {
	tctx, rid := traced(ctx)
	tctx, cancel := context.WithCancel(tctx)
	defer cancel()
	w := p.s.bucket.Object(name).If(storage.Conditions{DoesNotExist: true}).NewWriter(tctx)
	w.ChunkSize = 0 // one request
	w.ContentType = "text/plain"
	_, err = w.Write([]byte("groundzero capability probe\n"))
	if err != nil {
		cancel()
		w.Close()
	} else {
		err = w.Close()
	}
	switch {
	case err == nil:
		p.c.storage("objects.insert", p.objectLink(name), rid, "written")
		if _, ok := p.written[name]; !ok {
			p.order = append(p.order, name)
		}
		p.written[name] = append(p.written[name], w.Attrs().Generation)
		return false, nil
	case httpCode(err) == http.StatusPreconditionFailed:
		p.c.storage("objects.insert", p.objectLink(name), rid, "refused")
		return true, err
	default:
		p.c.storage("objects.insert", p.objectLink(name), rid, outcomeFailed)
		return false, err
	}
}

// unreachable reports an error that is not the service's answer.
func unreachable(err error) bool {
	return err != nil && httpCode(err) == 0 && !errors.Is(err, storage.ErrObjectNotExist) && !errors.Is(err, storage.ErrBucketNotExist)
}

func (p *prober) conditionalWrite(ctx context.Context, name string) (backend.ProbeResult, error) {
	r := backend.ProbeResult{Name: backend.ProbeConditionalWrite}
	if _, err := p.create(ctx, name); err != nil {
		if unreachable(err) {
			return r, fmt.Errorf("gcs: probe: write %s: %w", name, err)
		}
		r.Detail = fmt.Sprintf("a create of a new object with ifGenerationMatch=0 was refused: %v", err)
		return r, nil
	}
	refused, err := p.create(ctx, name)
	switch {
	case refused:
		r.OK, r.Detail = true, "a second create with ifGenerationMatch=0 was refused with 412 Precondition Failed"
	case err == nil:
		r.Detail = "a second create with ifGenerationMatch=0 replaced the object"
	case unreachable(err):
		return r, fmt.Errorf("gcs: probe: write %s: %w", name, err)
	default:
		r.Detail = fmt.Sprintf("a second create with ifGenerationMatch=0 was refused, but not with 412 Precondition Failed: %v", err)
	}
	return r, nil
}

// afterDelete creates an object, deletes it and creates it again, each
// create with ifGenerationMatch=0. kept says whether the bucket kept the
// deleted generation: "yes", what went wrong, or "" when the probe did not
// get that far.
func (p *prober) afterDelete(ctx context.Context, name string, versioned bool) (r backend.ProbeResult, kept string, err error) {
	r.Name = backend.ProbeConditionalAfterMark
	where := "an unversioned bucket"
	if versioned {
		where = "a versioned bucket"
	}
	if _, err := p.create(ctx, name); err != nil {
		if unreachable(err) {
			return r, "", fmt.Errorf("gcs: probe: write %s: %w", name, err)
		}
		r.Detail = fmt.Sprintf("a create of a new object with ifGenerationMatch=0 was refused: %v", err)
		return r, "", nil
	}
	first := p.written[name][len(p.written[name])-1]

	tctx, rid := traced(ctx)
	err = p.s.bucket.Object(name).Delete(tctx)
	p.c.storage("objects.delete", p.objectLink(name), rid, outcome(err, "deleted"))
	if unreachable(err) {
		return r, "", fmt.Errorf("gcs: probe: delete %s: %w", name, err)
	}
	if err != nil {
		r.Detail = fmt.Sprintf("the object could not be deleted: %v", err)
		return r, "", nil
	}

	if versioned {
		tctx, rid := traced(ctx)
		_, err := p.s.bucket.Object(name).Generation(first).Attrs(tctx)
		switch {
		case errors.Is(err, storage.ErrObjectNotExist):
			p.c.storage("objects.get", p.objectLink(name), rid, outcomeMissing)
		default:
			p.c.storage("objects.get", p.objectLink(name), rid, outcome(err, "read"))
		}
		switch {
		case unreachable(err):
			return r, "", fmt.Errorf("gcs: probe: read %s: %w", name, err)
		case errors.Is(err, storage.ErrObjectNotExist):
			kept = "a deleted generation was not kept"
		case err != nil:
			kept = fmt.Sprintf("a deleted generation could not be read: %v", err)
		default:
			kept = "yes"
		}
	}

	refused, err := p.create(ctx, name)
	switch {
	case err == nil:
		r.OK, r.Detail = true, fmt.Sprintf("on %s, a create with ifGenerationMatch=0 of a deleted object succeeded", where)
	case unreachable(err):
		return r, kept, fmt.Errorf("gcs: probe: write %s: %w", name, err)
	case refused:
		r.Detail = fmt.Sprintf("on %s, a create with ifGenerationMatch=0 of a deleted object was refused with 412 Precondition Failed", where)
	default:
		r.Detail = fmt.Sprintf("on %s, a create with ifGenerationMatch=0 of a deleted object was refused: %v", where, err)
	}
	return r, kept, nil
}

// cleanUp deletes every generation the probe made. One it may not delete
// (under a retention policy) stays.
func (p *prober) cleanUp(ctx context.Context) error {
	for _, name := range p.order {
		for _, gen := range p.written[name] {
			tctx, rid := traced(ctx)
			err := p.s.bucket.Object(name).Generation(gen).Delete(tctx)
			p.c.storage("objects.delete", p.objectLink(name), rid, outcome(err, "deleted"))
			if unreachable(err) {
				return fmt.Errorf("gcs: probe: delete %s: %w", name, err)
			}
		}
	}
	return nil
}
