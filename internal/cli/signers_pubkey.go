package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/internal/sign"
)

func (a *app) signersPubkeyCmd() *cobra.Command {
	var keySpec string
	c := &cobra.Command{
		Use:   "pubkey [--key KEYSPEC]",
		Short: "print the SSH public key line of a signing key, to register it",
		Long: `pubkey prints the SSH public key of the key a KEYSPEC names, as one line
(type, base64 key, and the KEYSPEC as its comment). For a key held in a KMS
(awskms:, gcpkms:, vault:) it is fetched from the service, which must hold an
ECDSA P-256 signing key; for ssh: and file: it is read from the key file.
Save the line to a file and register it:

  groundzero signers pubkey --key awskms:alias/groundzero-ci?region=eu-west-1 > ci.pub
  groundzero signers add --id ci.deploy --role ci --key ci.pub

The fingerprint goes to stderr. Nothing is signed or recorded.`,
		Args: cobra.NoArgs,
		// Nothing is recorded, so the checkpoint key is not resolved first:
		// the key being registered may be GROUNDZERO_KEY already.
		PersistentPreRunE: func(c *cobra.Command, args []string) error {
			a.command = strings.TrimPrefix(c.CommandPath(), "groundzero ")
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			gitConfig := func(string) string { return "" }
			if r, err := repo.Find(orDot(a.dir)); err == nil {
				gitConfig = func(k string) string { return r.GitConfig(a.ctx, k) }
			}
			spec, err := sign.Resolve(keySpec, a.getenv, gitConfig)
			if err != nil {
				return usage(err, "KEYSPEC is awskms:<key>, gcpkms:<key-version>, vault:<transit-key>, ssh:<key-path> or file:<path>")
			}
			pub, err := sign.PublicKey(a.ctx, spec)
			if err != nil {
				return usage(err, "check the KEYSPEC, the service's credentials in the environment, and that the key is an ECDSA P-256 signing key")
			}
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
			fmt.Fprintf(a.stdout, "%s %s\n", line, spec)
			a.info("key %s is %s", spec, ssh.FingerprintSHA256(pub))
			return nil
		},
	}
	c.Flags().StringVar(&keySpec, "key", "", "KEYSPEC: awskms:<key>, gcpkms:<key-version>, vault:<transit-key>, ssh:<path> or file:<path> (default GROUNDZERO_KEY)")
	return c
}
