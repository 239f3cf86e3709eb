package evidence

import _ "embed"

// The auditor's commands, word for word as the README gives them: check a
// bundle (evidence.tar.gz, in the current directory) with stock tools only,
// for an index signed with OpenPGP or with SSH.
var (
	//go:embed auditor-openpgp.sh
	AuditorOpenPGP string
	//go:embed auditor-ssh.sh
	AuditorSSH string
)
