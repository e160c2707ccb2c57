package pcsim

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestSignatures(t *testing.T) {
	clock := newFakeClock()
	id := engID(30)
	body := []byte(`{"Catalog":"Sandbox","Identifier":"` + id + `"}`)
	good := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}

	type signing struct {
		creds   aws.Credentials
		service string
		region  string
		skew    time.Duration
		// after changes the request once it is signed.
		after func(req *http.Request)
	}
	ok := signing{creds: good, service: signingName, region: "us-east-1"}
	with := func(f func(s *signing)) signing { s := ok; f(&s); return s }

	tests := []struct {
		name     string
		signing  signing
		verify   bool // the simulator knows the credentials and re-signs
		wantName string
	}{
		{"signed by the SDK", ok, true, ""},
		{"with a session token", with(func(s *signing) { s.creds.SessionToken = "session-token" }), true, ""},
		{"dated 14 minutes ago", with(func(s *signing) { s.skew = -14 * time.Minute }), true, ""},
		{"no Authorization header", with(func(s *signing) { s.after = func(r *http.Request) { r.Header.Del("Authorization") } }), true, "MissingAuthenticationTokenException"},
		{"malformed Authorization header", with(func(s *signing) {
			s.after = func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }
		}), true, "IncompleteSignatureException"},
		{"tampered body", with(func(s *signing) {
			s.after = func(r *http.Request) {
				tampered := bytes.Replace(body, []byte("Sandbox"), []byte("AWS"), 1)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			}
		}), true, "InvalidSignatureException"},
		{"tampered signed header", with(func(s *signing) {
			s.after = func(r *http.Request) { r.Header.Set("X-Amz-Target", targetPrefix+"UpdateEngagementContext") }
		}), true, "InvalidSignatureException"},
		{"wrong secret", with(func(s *signing) { s.creds.SecretAccessKey = "not-the-secret" }), true, "InvalidSignatureException"},
		{"unknown access key", with(func(s *signing) { s.creds.AccessKeyID = "AKIDUNKNOWN" }), true, "UnrecognizedClientException"},
		{"wrong service name", with(func(s *signing) { s.service = "partnercentral" }), true, "InvalidSignatureException"},
		{"wrong region", with(func(s *signing) { s.region = "eu-west-1" }), true, "InvalidSignatureException"},
		{"stale date", with(func(s *signing) { s.skew = -16 * time.Minute }), true, "InvalidSignatureException"},
		{"date in the future", with(func(s *signing) { s.skew = 16 * time.Minute }), true, "InvalidSignatureException"},

		// Without credentials any key and secret pass, but the header must
		// still be well formed, scoped right and fresh.
		{"no credentials: any secret", with(func(s *signing) { s.creds = aws.Credentials{AccessKeyID: "AKIDANY", SecretAccessKey: "any"} }), false, ""},
		{"no credentials: missing header", with(func(s *signing) { s.after = func(r *http.Request) { r.Header.Del("Authorization") } }), false, "MissingAuthenticationTokenException"},
		{"no credentials: bad signature format", with(func(s *signing) {
			s.after = func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=zz", 1))
			}
		}), false, "IncompleteSignatureException"},
		{"no credentials: wrong service", with(func(s *signing) { s.service = "execute-api" }), false, "InvalidSignatureException"},
		{"no credentials: stale date", with(func(s *signing) { s.skew = -time.Hour }), false, "InvalidSignatureException"},
	}

	verifying := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
	open, err := NewServer(Options{Unlimited: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(open.Close)
	for _, srv := range []*Server{verifying, open} {
		if err := srv.AddEngagement(NewEngagement{Id: id, Catalog: "Sandbox"}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := open
			if tt.verify {
				srv = verifying
			}
			c := newClient(t, srv, clock.Now)
			s := tt.signing
			req, err := signedRequest(t.Context(), srv.URL, opGet, body, s.creds, s.service, s.region, clock.Now().Add(s.skew))
			if err != nil {
				t.Fatal(err)
			}
			if s.after != nil {
				s.after(req)
			}
			before := count403(srv)
			res, err := c.send(req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantName == "" {
				if res.status != http.StatusOK {
					t.Fatalf("got %s, want 200", res)
				}
				return
			}
			wantError(t, res, http.StatusForbidden, tt.wantName)
			if got, want := count403(srv), before+1; got != want {
				t.Errorf("got %d counted 403s, want %d", got, want)
			}
		})
	}
}

func TestUnsignedUnknownOperationCounted(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "AWSPartnerCentralSelling.DeleteEverything")
	res, err := c.send(req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, res, http.StatusForbidden, "MissingAuthenticationTokenException")
	if got := srv.Stats().Calls[opUnknown]["403"]; got != 1 {
		t.Errorf("got %d counted unknown 403s, want 1", got)
	}
}

// count403 sums the 403s counted for every operation.
func count403(srv *Server) int {
	n := 0
	for _, m := range srv.Stats().Calls {
		n += m["403"]
	}
	return n
}
