package cicred

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"testing"
)

// sioVectors are AES-128-GCM vectors of the sio (DARE 2.0) stream format,
// from secure-io/sio-go's test_vectors.json: the format MinIO's admin API
// encrypts bodies with.
var sioVectors = []struct {
	bufSize                       int
	key, nonce, ad, plain, sealed string
}{
	{16, "00000000000000000000000000000000", "0000000000000000", "", "", "e0247a864e783cecb1f7996c13cd3f64"},
	{16, "10000000000000000000000000000000", "1000000000000000", "00", "00", "61ed193d12a2adf6f1c41f31de4ead6c5c"},
	{16, "00000000000000000000000000000000", "0000000000000000", "0000000000000000", "0000000000000000", "4661d681f92680d7a307c7a036700edde4697a1f3ba7e01b"},
	{16, "00000000000000000000000000000001", "2000000000000000", "1000000000000000", "00000000000000000000000000000000", "8501dcfa461a0860ef9933655b1e59a9e7db1ed363b6ff80f219ca986dca9ce2"},
	{16, "10000000000000000000000000000000", "0000000000000002", "", "0000000000000000000000000000000000", "691deb7b9ccbee91f48d12c7ad5fe3cd4e1e5e7d394f06b91228ec9a5dd2456ac7de9502a0b4010fb1ee1db94e940458fb"},
	{16, "20000000000000000000000000000000", "2000000000000000", "00", "0000000000000000000000000000000000000000000000000000000000000000", "f58d8fef7ac7782a4361a79c07f5e6c4672d8a45e6cb9ef67cb7177897358deb8d338d313d44f78e0b68a3723d7ca0fe5f62aa8af0a72e508f5d5f8491ecedb2"},
	{17, "31dd758d120fd5d30063921a21f723be", "d3794fe387018e32", "1d838b6e861ea7576de110e08818de82a27337a99db7b95aa95c3347971ad4cfa0ef0960d6645f5a64f88c7d", "d0ae0d85e93ed6be853ded2031643116a03215b4fda224d2986d7233039aa47e91b686f4", "a6fe911b94e0b25a25bf6da71f28ad6a6b6920be01589e9194226f77c164606545d5cbdb76c99415b468c54517f5a8bc8dc8ac13b1b4285fe36f37f7884d5e4bfb32ecef56b4026bf02bfb1d4fce222e01ef9db9"},
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSioVectors(t *testing.T) {
	for i, v := range sioVectors {
		block, _ := aes.NewCipher(unhex(t, v.key))
		aead, _ := cipher.NewGCM(block)
		got := sioSeal(aead, v.bufSize, unhex(t, v.nonce), unhex(t, v.ad), unhex(t, v.plain))
		if hex.EncodeToString(got) != v.sealed {
			t.Errorf("vector %d: sioSeal = %x, want %s", i, got, v.sealed)
		}
		plain, err := sioOpen(aead, v.bufSize, unhex(t, v.nonce), unhex(t, v.ad), unhex(t, v.sealed))
		if err != nil || !bytes.Equal(plain, unhex(t, v.plain)) {
			t.Errorf("vector %d: sioOpen = %x, %v, want %s", i, plain, err, v.plain)
		}
	}
}

func TestAdminDataRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, sioBufSize - 1, sioBufSize, sioBufSize + 1, 3*sioBufSize + 7} {
		msg := bytes.Repeat([]byte{'x'}, n)
		sealed, err := EncryptAdminData("admin-secret", msg)
		if err != nil {
			t.Fatal(err)
		}
		if sealed[32] != aeadArgon2AES || len(sealed) != 41+n+16*max(1, (n+sioBufSize-1)/sioBufSize) {
			t.Errorf("EncryptAdminData(%d bytes): id %d, %d bytes", n, sealed[32], len(sealed))
		}
		got, err := DecryptAdminData("admin-secret", sealed)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("DecryptAdminData(EncryptAdminData(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
		if _, err := DecryptAdminData("other-secret", sealed); err == nil {
			t.Errorf("DecryptAdminData with the wrong password succeeded (%d bytes)", n)
		}
		sealed[len(sealed)-1] ^= 1
		if _, err := DecryptAdminData("admin-secret", sealed); err == nil {
			t.Errorf("DecryptAdminData of a tampered body succeeded (%d bytes)", n)
		}
	}
	// A stream cut at a fragment boundary is refused: the last fragment
	// left is not marked final.
	sealed, _ := EncryptAdminData("admin-secret", bytes.Repeat([]byte{'y'}, 2*sioBufSize+5))
	if _, err := DecryptAdminData("admin-secret", sealed[:41+sioBufSize+16]); err == nil {
		t.Error("DecryptAdminData of a truncated stream succeeded")
	}
}

// FuzzSioOpen: any bytes either fail to open or are a stream sioSeal
// makes from what they open to.
func FuzzSioOpen(f *testing.F) {
	block, _ := aes.NewCipher(make([]byte, 16))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 8)
	f.Add(sioSeal(aead, 16, nonce, nil, []byte("hello")))
	f.Add(sioSeal(aead, 16, nonce, nil, bytes.Repeat([]byte{1}, 40)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := sioOpen(aead, 16, nonce, nil, data)
		if err != nil {
			return
		}
		if again := sioSeal(aead, 16, nonce, nil, plain); !bytes.Equal(again, data) {
			t.Errorf("sioSeal(sioOpen(%x)) = %x", data, again)
		}
	})
}
