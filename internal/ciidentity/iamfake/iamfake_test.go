package iamfake_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/groundzero/groundzero/internal/ciidentity/iamfake"
)

func client(s *iamfake.Server, key, region string) *iam.Client {
	return iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret", "")})
}

// A role made through the SDK is held as sent and read back URL-encoded,
// as IAM returns it; every request is logged with the request ID answered.
func TestRoleRoundTrip(t *testing.T) {
	s := iamfake.Start("111122223333", "AKIDTEST")
	defer s.Close()
	c := client(s, "AKIDTEST", "us-east-1")
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Condition":{"StringLike":{"a:sub":"x y+z"}}}]}`
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	g, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := url.QueryUnescape(aws.ToString(g.Role.AssumeRolePolicyDocument)); got != trust || aws.ToString(g.Role.Arn) != "arn:aws:iam::111122223333:role/r" {
		t.Errorf("GetRole = %s %q, want the trust policy sent, URL-encoded", aws.ToString(g.Role.Arn), aws.ToString(g.Role.AssumeRolePolicyDocument))
	}
	if r, ok := s.Role("r"); !ok || r.Trust != trust {
		t.Errorf("Role(r) = %+v, %v", r, ok)
	}
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("absent")})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("GetRole(absent) = %v, want NoSuchEntity", err)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Op != "CreateRole" || !reqs[0].Writes() || reqs[1].Writes() || reqs[2].Status != http.StatusNotFound || reqs[2].RequestID != "iamfake-0003" {
		t.Errorf("requests = %+v", reqs)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Errorf("problems = %q", p)
	}
}

// Requests signed by another key, for another region, or not signed are
// refused and reported; nothing they ask for is made.
func TestRefusesUnsigned(t *testing.T) {
	s := iamfake.Start("111122223333", "AKIDTEST")
	defer s.Close()
	ctx := context.Background()
	for _, c := range []*iam.Client{client(s, "AKIDOTHER", "us-east-1"), client(s, "AKIDTEST", "eu-west-1")} {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String("{}")}); err == nil {
			t.Error("CreateRole with wrong credentials succeeded")
		}
	}
	resp, err := http.Post(s.URL, "application/x-www-form-urlencoded", strings.NewReader("Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned CreateRole: %s, want 403", resp.Status)
	}
	if _, ok := s.Role("r"); ok || len(s.Problems()) != 3 {
		t.Errorf("role made %v; problems %q, want 3", ok, s.Problems())
	}
}

// The interceptor serves only its hosts, with a certificate the client
// trusts through the CA file; the Google fake answers only the token its
// token endpoint issued.
func TestInterceptor(t *testing.T) {
	g := iamfake.StartGCP("tok")
	i, err := iamfake.Intercept(t.TempDir(), g.Hosts())
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	pem, err := os.ReadFile(i.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	proxy, _ := url.Parse(i.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(u, token string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := get("https://iam.googleapis.com/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com", "tok"); err != nil || st != http.StatusNotFound {
		t.Errorf("GET an absent account with the token = %d, %v; want 404", st, err)
	}
	if st, err := get("https://iam.googleapis.com/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com", "other"); err != nil || st != http.StatusUnauthorized {
		t.Errorf("GET with another token = %d, %v; want 401", st, err)
	}
	if _, err := get("https://example.com/", "tok"); err == nil {
		t.Error("GET https://example.com through the interceptor succeeded")
	}
	if r := i.Refused(); len(r) != 1 || r[0] != "CONNECT example.com:443" {
		t.Errorf("Refused() = %q", r)
	}
	if p := g.Problems(); len(p) != 1 || !strings.Contains(p[0], "without the issued access token") {
		t.Errorf("Problems() = %q", p)
	}
}
