package ciauth

import (
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings to Verify as the raw token against a live issuer:
// none may panic and none may be accepted. The seeds signed with the issuer's key fail
// only on their claims, so mutations that keep the signature cannot make them pass.
func FuzzVerify(f *testing.F) {
	is := newIssuer(f)
	wrongRepo := is.githubClaims()
	wrongRepo["repository"] = "acme/other"
	wrongAud := is.githubClaims()
	wrongAud["aud"] = "someone-else"
	branch := is.githubClaims()
	branch["ref"], branch["ref_type"] = "refs/heads/main", "branch"
	for _, seed := range []Token{
		"",
		"a.b.c",
		"eyJhbGciOiJSUzI1NiJ9.e30.",
		mint(f, forgerKey(), is.githubClaims()),
		unsigned(f, is.githubClaims()),
		mint(f, issuerKey(), wrongRepo),
		mint(f, issuerKey(), wrongAud),
		mint(f, issuerKey(), branch),
		Token(strings.Repeat("A", MaxTokenSize+1)),
	} {
		f.Add(string(seed))
	}
	pol := githubPolicy(is)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := Verify(t.Context(), GitHub, Token(raw), pol, now, true)
		if err == nil {
			t.Fatalf("Verify(%q) = %+v, nil; want an error", raw, *id)
		}
		if id != nil {
			t.Fatalf("Verify(%q) = %+v with an error, want nil identity", raw, *id)
		}
	})
}
