package sign

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzSSHECDSASignature: whatever a KMS returns, the conversion either
// refuses it or accepts exactly one canonical DER encoding, whose two
// integers the SSH form carries unchanged.
func FuzzSSHECDSASignature(f *testing.F) {
	f.Add(derSig(1, 2))
	f.Add(derSig(1, 0x80))
	f.Add(bytes.Repeat([]byte{1}, 64))
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		blob, err := sshECDSASignature(der)
		if err != nil {
			return
		}
		var rs struct{ R, S *big.Int }
		if err := ssh.Unmarshal(blob, &rs); err != nil {
			t.Fatalf("sshECDSASignature(%x) = %x, which does not unmarshal: %v", der, blob, err)
		}
		again, err := asn1.Marshal(rs)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("sshECDSASignature accepted %x, whose canonical DER is %x", der, again)
		}
	})
}
