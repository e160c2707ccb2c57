package pcsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from the service's clock,
	// as AWS allows.
	maxClockSkew = 15 * time.Minute
)

// authorization is a parsed SigV4 Authorization header:
// AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/partnercentral-selling/aws4_request,
// SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex>.
type authorization struct {
	accessKey, date, region, service, terminator string
	signedHeaders                                []string
	signature                                    string
}

func parseAuthorization(v string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(v, sigAlgorithm+" ")
	if !ok {
		return a, fmt.Errorf("Authorization header must start with %s", sigAlgorithm)
	}
	var cred, signed string
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("Authorization header has a malformed part %q", strings.TrimSpace(part))
		}
		switch k {
		case "Credential":
			cred, haveCred = val, true
		case "SignedHeaders":
			signed, haveSigned = val, true
		case "Signature":
			a.signature, haveSig = val, true
		}
	}
	switch {
	case !haveCred:
		return a, errors.New("Authorization header requires 'Credential' parameter")
	case !haveSigned:
		return a, errors.New("Authorization header requires 'SignedHeaders' parameter")
	case !haveSig:
		return a, errors.New("Authorization header requires 'Signature' parameter")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] == "" {
		return a, errors.New("Credential must have the form <access key>/<date>/<region>/<service>/aws4_request")
	}
	a.accessKey, a.date, a.region, a.service, a.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	a.signedHeaders = strings.Split(signed, ";")
	if !slices.IsSorted(a.signedHeaders) || slices.Contains(a.signedHeaders, "") {
		return a, errors.New("SignedHeaders must be a sorted list of lower-case header names separated by ';'")
	}
	for _, h := range a.signedHeaders {
		if h != strings.ToLower(h) {
			return a, errors.New("SignedHeaders must be a sorted list of lower-case header names separated by ';'")
		}
	}
	if !slices.Contains(a.signedHeaders, "host") || !slices.Contains(a.signedHeaders, "x-amz-date") {
		return a, errors.New("SignedHeaders must include host and x-amz-date")
	}
	if len(a.signature) != 64 || !isLowerHex(a.signature) {
		return a, errors.New("Signature must be 64 lower-case hexadecimal digits")
	}
	return a, nil
}

func isLowerHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// authenticate checks the request's SigV4 signature: present, well formed,
// scoped to this service and region, dated within 15 minutes of the clock
// and, when credentials are configured, made with a known key and its
// secret over exactly this request.
func (s *Sim) authenticate(r *http.Request, body []byte) *apiError {
	header := r.Header.Get("Authorization")
	if header == "" {
		return authError(errMissingToken, "Missing Authentication Token")
	}
	a, err := parseAuthorization(header)
	if err != nil {
		return authError(errIncompleteSig, "%v", err)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return authError(errIncompleteSig, "Authorization header requires existence of a 'X-Amz-Date' header")
	}
	signedAt, err := time.Parse(amzDateFmt, amzDate)
	if err != nil {
		return authError(errIncompleteSig, "X-Amz-Date %q is not in the form 20060102T150405Z", amzDate)
	}
	switch {
	case a.date != amzDate[:8]:
		return authError(errInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", a.date, amzDate[:8])
	case a.service != signingName:
		return authError(errInvalidSignature, "Credential should be scoped to correct service: '%s'.", signingName)
	case a.region != s.region:
		return authError(errInvalidSignature, "Credential should be scoped to a valid region, not '%s'.", a.region)
	case a.terminator != "aws4_request":
		return authError(errInvalidSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", a.terminator)
	}
	now := s.now().UTC()
	if signedAt.Before(now.Add(-maxClockSkew)) {
		return authError(errInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-maxClockSkew).Format(amzDateFmt), now.Format(amzDateFmt))
	}
	if signedAt.After(now.Add(maxClockSkew)) {
		return authError(errInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, now.Add(maxClockSkew).Format(amzDateFmt), now.Format(amzDateFmt))
	}
	if s.credentials == nil {
		return nil
	}
	secret, ok := s.credentials[a.accessKey]
	if !ok {
		return authError(errUnrecognized, "The security token included in the request is invalid.")
	}
	want, err := s.expectedSignature(r, body, a, secret, signedAt)
	if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(a.signature)) != 1 {
		return authError(errInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

// expectedSignature signs a copy of the request made of the headers the
// client says it signed, with the SDK's own signer, and returns the
// signature. Using the SDK's signer rather than a second implementation
// means the simulator and the client cannot agree on a mistake of their own.
func (s *Sim) expectedSignature(r *http.Request, body []byte, a authorization, secret string, signedAt time.Time) (string, error) {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
			// The server moves Host out of the header map; the signer reads req.Host.
		case "content-length":
			// The signer takes it from ContentLength, and only when positive.
			req.ContentLength = int64(len(body))
		default:
			if vs := r.Header.Values(h); len(vs) > 0 {
				req.Header[http.CanonicalHeaderKey(h)] = vs
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.accessKey, SecretAccessKey: secret}
	if err := s.signer.SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), a.service, a.region, signedAt); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	_, sig, ok := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", errors.New("sign: no signature in the Authorization header")
	}
	return sig, nil
}
