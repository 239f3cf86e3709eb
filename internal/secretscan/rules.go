package secretscan

import (
	"bytes"
	"path"
	"regexp"
	"strings"
)

// Rule is one kind of credential the scan looks for.
type Rule struct {
	// ID names the rule in findings and in waivers. Where gitleaks'
	// default rule set has a rule for the same credential, the ID is the
	// same, so a finding reads the same in both tools.
	ID string
	// Description says what the rule finds; it is printed with every
	// finding and never contains matched text.
	Description string
	// Keywords (lower case) pre-filter the content: the pattern runs only
	// on files that contain one of them.
	Keywords []string
	// Pattern finds a candidate; Group is the submatch holding the secret
	// itself (0 for the whole match).
	Pattern *regexp.Regexp
	Group   int
	// Entropy is the least Shannon entropy, in bits per byte, that the
	// secret must have (0 for no minimum): fixed placeholders and
	// repeated characters fall below it.
	Entropy float64
	// Accept, when set, decides a candidate from the text of the match:
	// m[i] is submatch i. It returns false for what is known not to be a
	// credential.
	Accept func(m [][]byte, file string) bool
	// Multiline patterns run over the whole file; the others run only
	// on the lines that hold one of the keywords.
	Multiline bool
	// Fallback rules report a line only when no other rule found
	// something on it: a token assigned to "token" is reported once, by
	// the rule that knows the token.
	Fallback bool
	// Files, when set, flags a file by its name alone, whatever it holds
	// (binary key stores). Such a finding has line 0.
	Files func(base string) bool
}

// Rules is the rule table, modelled on gitleaks' default rule set
// (config/gitleaks.toml, MIT licence), narrowed to the credentials that
// reach infrastructure repositories and tuned so that groundzero's own
// records (public keys, detached signatures, SHA-256 digests, MANIFEST,
// signers.yaml) never match. A waiver names a rule by its ID; see the README
// for the list.
var Rules = []Rule{
	{
		ID:          "private-key",
		Description: "private key block (PEM, OpenSSH, PGP or PKCS#8)",
		Keywords:    []string{"private key"},
		Multiline:   true,
		// A BEGIN line of a private key type, optional armour headers
		// (Proc-Type, Version, Comment), then key material: a documentation
		// stub with "..." as its body does not match. The second form is
		// the key written on one line with escaped newlines, as in a GCP
		// service-account JSON file or an HCL string.
		Pattern: regexp.MustCompile(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:(?:\r?\n[A-Za-z0-9-]{1,40}: [^\r\n]{0,200})*(?:\r?\n){1,2}[ \t]*[A-Za-z0-9+/=]{32,}|(?:\\r)?\\n(?:[A-Za-z0-9-]{1,40}: [^\\"]{0,200}(?:\\r)?\\n)*(?:(?:\\r)?\\n)?[A-Za-z0-9+/=]{32,})`),
	},
	{
		ID:          "putty-private-key",
		Description: "PuTTY private key file",
		Keywords:    []string{"putty-user-key-file-"},
		Multiline:   true,
		Pattern:     regexp.MustCompile(`PuTTY-User-Key-File-[0-9]: [a-z0-9-]+\r?\nEncryption: `),
	},
	{
		ID:          "private-key-file",
		Description: "key store or private key file (by its name)",
		Files: func(base string) bool {
			switch strings.ToLower(path.Ext(base)) {
			case ".p12", ".pfx", ".pkcs12", ".jks", ".keystore", ".ppk":
				return true
			}
			switch base {
			case "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk":
				return true
			}
			return false
		},
	},
	{
		ID:          "gcp-service-account-key",
		Description: "GCP service account key (JSON with a private key)",
		Keywords:    []string{"private_key_id"},
		// The private key of such a file is reported by private-key; this
		// rule catches the file by the key's ID, which only a key file
		// (or a copy of one) holds, also when the key itself is split
		// differently.
		Pattern: regexp.MustCompile(`"private_key_id"\s*:\s*"([0-9a-f]{40})"`),
		Group:   1,
		Entropy: 3,
	},
	{
		ID:          "gcp-api-key",
		Description: "GCP API key",
		Keywords:    []string{"aiza"},
		Pattern:     regexp.MustCompile(`\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)`),
		Group:       1,
		Entropy:     3,
		Accept:      notExample,
	},
	{
		ID:          "aws-access-token",
		Description: "AWS access key ID",
		Keywords:    []string{"a3t", "akia", "asia", "abia", "acca"},
		Pattern:     regexp.MustCompile(`\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b`),
		Group:       1,
		Entropy:     3,
		Accept:      notExample,
	},
	{
		ID:          "aws-secret-access-key",
		Description: "AWS secret access key",
		Keywords:    []string{"secret"},
		Pattern:     regexp.MustCompile(`(?i)(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key|\bsecret[_-]?key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`),
		Group:       1,
		Entropy:     4,
		Accept:      notExample,
	},
	{
		ID:          "github-pat",
		Description: "GitHub personal access token",
		Keywords:    []string{"ghp_"},
		Pattern:     regexp.MustCompile(`\b(ghp_[0-9A-Za-z]{36})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "github-fine-grained-pat",
		Description: "GitHub fine-grained personal access token",
		Keywords:    []string{"github_pat_"},
		Pattern:     regexp.MustCompile(`\b(github_pat_[0-9A-Za-z_]{82})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "github-oauth",
		Description: "GitHub OAuth access token",
		Keywords:    []string{"gho_"},
		Pattern:     regexp.MustCompile(`\b(gho_[0-9A-Za-z]{36})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "github-app-token",
		Description: "GitHub App token",
		Keywords:    []string{"ghu_", "ghs_"},
		Pattern:     regexp.MustCompile(`\b((?:ghu|ghs)_[0-9A-Za-z]{36})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "github-refresh-token",
		Description: "GitHub refresh token",
		Keywords:    []string{"ghr_"},
		Pattern:     regexp.MustCompile(`\b(ghr_[0-9A-Za-z]{36})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "gitlab-pat",
		Description: "GitLab personal, project or group access token",
		Keywords:    []string{"glpat-"},
		Pattern:     regexp.MustCompile(`\b(glpat-[0-9A-Za-z_-]{20,300}(?:\.[0-9a-z]{2,12})?)(?:[^0-9A-Za-z_.-]|$)`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "gitlab-ptt",
		Description: "GitLab pipeline trigger token",
		Keywords:    []string{"glptt-"},
		Pattern:     regexp.MustCompile(`\b(glptt-[0-9a-f]{40})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "gitlab-runner-token",
		Description: "GitLab runner registration or authentication token",
		Keywords:    []string{"gr1348941", "glrt-"},
		Pattern:     regexp.MustCompile(`\b((?:GR1348941|glrt-)[0-9A-Za-z_-]{20,})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "gitlab-deploy-token",
		Description: "GitLab deploy token",
		Keywords:    []string{"gldt-"},
		Pattern:     regexp.MustCompile(`\b(gldt-[0-9A-Za-z_-]{20,})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "slack-bot-token",
		Description: "Slack bot token",
		Keywords:    []string{"xoxb-"},
		Pattern:     regexp.MustCompile(`\b(xoxb-[0-9]{10,13}-[0-9]{10,13}[0-9A-Za-z-]*)`),
		Group:       1,
	},
	{
		ID:          "slack-user-token",
		Description: "Slack user or configuration token",
		Keywords:    []string{"xoxp-", "xoxe-", "xoxe.", "xoxa-", "xoxr-", "xoxs-"},
		Pattern:     regexp.MustCompile(`\b(xox(?:[pars]|e\.xox[bp]|e)-[0-9A-Za-z-]{20,})`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "slack-app-token",
		Description: "Slack app-level token",
		Keywords:    []string{"xapp-"},
		Pattern:     regexp.MustCompile(`(?i)\b(xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+)\b`),
		Group:       1,
	},
	{
		ID:          "slack-webhook-url",
		Description: "Slack incoming webhook URL",
		Keywords:    []string{"hooks.slack.com"},
		Pattern:     regexp.MustCompile(`(?i)hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/]{43,56})`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "digitalocean-pat",
		Description: "DigitalOcean personal access token",
		Keywords:    []string{"dop_v1_"},
		Pattern:     regexp.MustCompile(`\b(dop_v1_[a-f0-9]{64})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "digitalocean-access-token",
		Description: "DigitalOcean OAuth access token",
		Keywords:    []string{"doo_v1_"},
		Pattern:     regexp.MustCompile(`\b(doo_v1_[a-f0-9]{64})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "digitalocean-refresh-token",
		Description: "DigitalOcean OAuth refresh token",
		Keywords:    []string{"dor_v1_"},
		Pattern:     regexp.MustCompile(`\b(dor_v1_[a-f0-9]{64})\b`),
		Group:       1,
		Entropy:     3,
	},
	{
		ID:          "vault-service-token",
		Description: "HashiCorp Vault service token",
		Keywords:    []string{"hvs.", "s."},
		// Current tokens carry the hvs. prefix; legacy ones are s. and 24
		// characters, accepted only when they mix digits and both cases,
		// as a random token does and a dotted name does not.
		Pattern: regexp.MustCompile(`(?:^|[^0-9A-Za-z_.-])(hvs\.[0-9A-Za-z_-]{90,120}|s\.[0-9A-Za-z]{24})(?:[^0-9A-Za-z_.-]|$)`),
		Group:   1,
		Entropy: 3.5,
		Accept: func(m [][]byte, _ string) bool {
			s := m[1]
			if bytes.HasPrefix(s, []byte("hvs.")) {
				return true
			}
			return bytes.ContainsAny(s[2:], "0123456789") &&
				bytes.ContainsAny(s[2:], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
				bytes.ContainsAny(s[2:], "abcdefghijklmnopqrstuvwxyz")
		},
	},
	{
		ID:          "vault-batch-token",
		Description: "HashiCorp Vault batch token",
		Keywords:    []string{"hvb."},
		Pattern:     regexp.MustCompile(`\b(hvb\.[0-9A-Za-z_-]{138,300})\b`),
		Group:       1,
		Entropy:     4,
	},
	{
		ID:          "url-credentials",
		Description: "password in a URL (scheme://user:password@host)",
		Keywords:    []string{"://"},
		Pattern:     regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@"'<>${}]{1,64}:([^\s:/@"'<>${}]{6,128})@[A-Za-z0-9.-]+`),
		Group:       1,
		Accept: func(m [][]byte, _ string) bool {
			switch string(bytes.ToLower(m[1])) {
			case "password", "passwd", "secret", "pass", "pwd", "token":
				return false
			}
			return !placeholder(m[1])
		},
	},
	{
		ID:          "generic-secret",
		Description: "literal value assigned to a password, secret, token or key name",
		Keywords:    genericKeywords,
		Pattern:     regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:` + strings.Join(genericNames, "|") + `)[a-z0-9_.-]*)["']?[ \t]*(?::=|=>|=|:)[ \t]*(["']?)([^\s"'\x60;,]{8,})`),
		Group:       3,
		Entropy:     3.5,
		Accept:      genericAccept,
		Fallback:    true,
	},
}

var genericNames = []string{"password", "passwd", "pwd", "secret", "token", "api[_.-]?key", "access[_.-]?key", "auth[_.-]?key", "private[_.-]?key", "credential", "passphrase"}

var genericKeywords = []string{"password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "api.key", "access_key", "accesskey", "access-key", "auth_key", "authkey", "private_key", "privatekey", "credential", "passphrase"}

// notExample rejects AWS's and others' documentation placeholders, which
// end in EXAMPLE (AKIAIOSFODNN7EXAMPLE).
func notExample(m [][]byte, _ string) bool {
	return !bytes.Contains(bytes.ToUpper(m[len(m)-1]), []byte("EXAMPLE")) && !bytes.Contains(bytes.ToUpper(m[0]), []byte("EXAMPLE"))
}

// Name parts that make the assigned value a reference to a secret, or a
// property of one, rather than the secret: secret_arn, token_ttl,
// password_length, private_key_path, api_key_sha256.
var referenceName = regexp.MustCompile(`(?i)(?:^|[_.-])(?:arn|ids?|names?|paths?|files?|url|uri|ref|version|length|len|type|ttl|policy|prefix|suffix|rotation|expiry|expires|count|min|max|enabled|required|mode|header|param|field|env|var|source|key_id|location|store|manager|engine|mount|role)$|sha1|sha256|sha512|hash|digest|checksum|fingerprint`)

// Values that are expressions, references to a secret store, or templates.
var referenceValue = regexp.MustCompile(`^(?:\$|\{\{|<|%|\*|!|\(|\[|\{|/|arn:|ocid1\.|projects/|https?://|vault:|secret/|sm://|ref\+|env:|file:|(?:var|local|data|module|each|self|count)\.)|\$\{|\{\{|\(\)`)

// A dotted chain of identifiers: an expression, not a literal.
var dottedIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])+$`)

func genericAccept(m [][]byte, file string) bool {
	name, quote, value := m[1], m[2], m[3]
	if len(value) > 256 {
		// Longer values are encoded data, not a password.
		return false
	}
	if referenceName.Match(name) || referenceValue.Match(value) || placeholder(value) {
		return false
	}
	if len(quote) == 0 {
		// HCL literals are always quoted; an unquoted value is an
		// expression (random_password.db.result).
		if isHCL(file) || dottedIdent.Match(value) {
			return false
		}
	}
	return true
}

func isHCL(file string) bool {
	switch path.Ext(file) {
	case ".tf", ".tfvars", ".hcl", ".tofu":
		return true
	}
	return false
}

var placeholderWords = []string{"example", "changeme", "change_me", "placeholder", "redacted", "dummy", "sample", "replace", "your_", "your-", "xxxx", "****", "...", "insert"}

// placeholder reports values that documentation and templates use in place
// of a secret.
func placeholder(v []byte) bool {
	l := bytes.ToLower(v)
	for _, w := range placeholderWords {
		if bytes.Contains(l, []byte(w)) {
			return true
		}
	}
	return false
}
