package audit

import (
	"bytes"
	"encoding/hex"
	"math/rand"
	"testing"
)

func TestLastIndexIsBytesLastIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const alphabet = `,"seq:x0`
	for range 20000 {
		s := make([]byte, rng.Intn(40))
		for i := range s {
			s[i] = alphabet[rng.Intn(len(alphabet))]
		}
		if rng.Intn(3) == 0 {
			at := rng.Intn(len(s) + 1)
			s = append(s[:at], append(bytes.Clone(seqKey), s[at:]...)...)
		}
		if got, want := seqSearch.lastIndex(s), bytes.LastIndex(s, seqKey); got != want {
			t.Fatalf("lastIndex(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestDecodePrevIsHexDecode(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const alphabet = "0123456789abcdefABCDEFgG/:@`x\x00\xff"
	for range 20000 {
		src := make([]byte, 64)
		for i := range src {
			src[i] = "0123456789abcdefABCDEF"[rng.Intn(22)]
		}
		for k := rng.Intn(3); k > 0; k-- {
			src[rng.Intn(64)] = alphabet[rng.Intn(len(alphabet))]
		}
		var got, want [32]byte
		ok := decodePrev(&got, src)
		_, err := hex.Decode(want[:], src)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("decodePrev(%q) = %x, %v, want %x, %v", src, got, ok, want, err)
		}
	}
}
