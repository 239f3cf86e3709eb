package backend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// A Template is one embedded backend.tf template: the kind's file and the
// shared state-encryption part it uses. Its SHA-256 is that of the two
// files' bytes, concatenated in that order, so anyone can check it with
// `cat FILE PART | sha256sum`. A template is never changed once released:
// a change is a new version, so that every lock ever signed still renders.
type Template struct {
	Name   string   // e.g. "s3.v1"
	Files  []string // embedded file names, in hashing order
	SHA256 string
	tmpl   *template.Template
}

// templates by name; kinds map to the newest template for them.
var (
	templates = map[string]*Template{}
	newest    = map[string]string{
		KindS3: "s3.v1", KindMinIO: "s3.v1", KindSpaces: "s3.v1", KindOCI: "s3.v1",
		KindGCS: "gcs.v1", KindLocal: "local.v1",
	}
)

func init() {
	for _, t := range []struct{ name, file, part string }{
		{"s3.v1", "s3.v1.tf.tmpl", "encryption.v1.tmpl"},
		{"gcs.v1", "gcs.v1.tf.tmpl", "encryption.v1.tmpl"},
		{"oci.v1", "oci.v1.tf.tmpl", "encryption.v1.tmpl"},
		{"local.v1", "local.v1.tf.tmpl", "encryption.v1.tmpl"},
	} {
		h := sha256.New()
		tp := template.New(t.file).Funcs(template.FuncMap{"q": quote}).Option("missingkey=error")
		for _, f := range []string{t.file, t.part} {
			data, err := templateFS.ReadFile("templates/" + f)
			if err != nil {
				panic(err)
			}
			h.Write(data)
			template.Must(tp.New(f).Parse(string(data)))
		}
		templates[t.name] = &Template{Name: t.name, Files: []string{t.file, t.part}, SHA256: hex.EncodeToString(h.Sum(nil)), tmpl: tp}
	}
}

// TemplateFor returns the template a new lock for kind uses. nativeOCI
// selects OCI's native backend (Terraform 1.12 or later); OpenTofu reaches
// OCI Object Storage through its S3-compatible endpoint.
func TemplateFor(kind string, nativeOCI bool) (*Template, error) {
	if kind == KindOCI && nativeOCI {
		return templates["oci.v1"], nil
	}
	name, ok := newest[kind]
	if !ok {
		return nil, fmt.Errorf("no backend template for kind %q", kind)
	}
	return templates[name], nil
}

// TemplateBySHA256 returns the embedded template with that SHA-256, or nil.
func TemplateBySHA256(sum string) *Template {
	for _, t := range templates {
		if t.SHA256 == sum {
			return t
		}
	}
	return nil
}

// TemplateSource returns the bytes of an embedded template file.
func TemplateSource(file string) ([]byte, error) { return templateFS.ReadFile("templates/" + file) }

// Templates lists every embedded template, by name.
func Templates() []*Template {
	var out []*Template
	for _, t := range templates {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Template) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// PassphraseVar is the OpenTofu variable the pbkdf2 key provider reads its
// passphrase from; groundzero sets it from GROUNDZERO_STATE_PASSPHRASE.
const PassphraseVar = "groundzero_state_passphrase"

// Values are what a template renders: everything comes from the lock, so
// the same lock always renders the same bytes.
type Values struct {
	Kind      string
	Bucket    string
	StateKey  string // object key of the state (s3, oci); gcs uses its directory
	Region    string
	Endpoint  string
	Namespace string
	Lock      string
	LockTable string
	Path      string // kind local: the state file
	// The key: its provider and identifier, and for openbao its address,
	// mount and name.
	KeyProvider string
	KeyID       string
	KeyAddress  string
	KeyMount    string
	KeyName     string
	Encrypt     bool
	// Migrate renders the transitional form used once, in a private copy,
	// to move unencrypted bootstrap state into the store: an unencrypted
	// fallback for reading, not enforced. Never written to the repository.
	Migrate bool
}

// data is what the templates see.
type data struct {
	Values
	Template      string
	StatePrefix   string
	KMSKeyID      string
	PathStyle     bool
	Compatible    bool
	PassphraseVar string
}

// Render renders the template with v. It refuses values a template cannot
// hold safely (quotes, backslashes, template sequences, control
// characters), so the rendering is always one literal per value.
func (t *Template) Render(v Values) ([]byte, error) {
	d := data{Values: v, Template: t.Name, PassphraseVar: PassphraseVar}
	d.StatePrefix = strings.TrimSuffix(v.StateKey, "/terraform.tfstate")
	switch v.KeyProvider {
	case KeyAWSKMS, KeyGCPKMS, KeyOCIVault:
		d.KMSKeyID = v.KeyID
	}
	if S3API(v.Kind) && v.Kind != KindS3 {
		d.Compatible = true
		d.PathStyle = v.Kind == KindMinIO || v.Kind == KindOCI
	}
	if v.Kind == KindS3 && v.Endpoint != "" {
		// An S3 endpoint other than AWS's own (a gateway in tests).
		d.Compatible, d.PathStyle = true, true
	}
	if v.Encrypt && (v.KeyProvider == KeyNone || v.KeyProvider == KeyOCIVault || v.KeyProvider == "") {
		return nil, fmt.Errorf("state encryption needs a key provider OpenTofu speaks (aws_kms, gcp_kms, openbao or pbkdf2), not %q", v.KeyProvider)
	}
	if v.KeyProvider == KeyOpenBao && d.KeyMount == "" {
		d.KeyMount = "transit"
	}
	var b bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&b, t.Files[0], d); err != nil {
		var ue *unsafeError
		if errors.As(err, &ue) {
			return nil, ue
		}
		return nil, fmt.Errorf("render %s: %w", t.Name, err)
	}
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	return out, nil
}

type unsafeError struct{ value string }

func (e *unsafeError) Error() string {
	return fmt.Sprintf("backend value %q cannot be written into backend.tf: use letters, digits and . _ - / : @ = + , only", e.value)
}

var safeRE = regexp.MustCompile(`^[A-Za-z0-9._\-/:@=+,]*$`)

// quote writes a value as an HCL string literal; anything that HCL would
// read as more than a literal is refused.
func quote(s string) (string, error) {
	if !safeRE.MatchString(s) {
		return "", &unsafeError{s}
	}
	return `"` + s + `"`, nil
}
