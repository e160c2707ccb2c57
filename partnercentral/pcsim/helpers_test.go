package pcsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKIDPCSIMTEST"
	testSecret = "pcsim-test-secret"
)

// fakeClock is a clock tests move by hand. It starts off whole
// milliseconds, as a real clock almost always is.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 26, 6, 13, 8, 123456789, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestServer starts a simulator that knows the test credentials and
// closes it when the test ends.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{testKey: testSecret}
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// client signs calls with the AWS SDK's SigV4 signer, as the real client
// does, and sends them over HTTP.
type client struct {
	t       *testing.T
	url     string
	http    *http.Client
	creds   aws.Credentials
	service string
	region  string
	now     func() time.Time
}

func newClient(t *testing.T, srv *Server, now func() time.Time) *client {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{
		t:       t,
		url:     srv.URL,
		http:    &http.Client{Transport: tr},
		creds:   aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
		service: signingName,
		region:  "us-east-1",
		now:     now,
	}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) errType() string { return r.header.Get("X-Amzn-ErrorType") }

func (r result) String() string {
	return fmt.Sprintf("%d %s %s", r.status, r.errType(), r.body)
}

// decode unmarshals the body into v, failing the test when it cannot.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response body %s: %v", r.body, err)
	}
}

func toJSON(t *testing.T, v any) []byte {
	t.Helper()
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// signedRequest builds an API request signed at the given time.
func signedRequest(ctx context.Context, url, op string, body []byte, creds aws.Credentials, service, region string, at time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", jsonContent)
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	return req, sign(ctx, req, body, creds, service, region, at)
}

// sign signs req, whose body is body, with the AWS SDK's signer.
func sign(ctx context.Context, req *http.Request, body []byte, creds aws.Credentials, service, region string, at time.Time) error {
	sum := sha256.Sum256(body)
	return v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, region, at)
}

// send runs a prepared request; a transport error is returned, not fatal.
func (c *client) send(req *http.Request) (result, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// do signs and sends one call.
func (c *client) do(ctx context.Context, op string, body any) (result, error) {
	c.t.Helper()
	req, err := signedRequest(ctx, c.url, op, toJSON(c.t, body), c.creds, c.service, c.region, c.now())
	if err != nil {
		c.t.Fatalf("sign: %v", err)
	}
	return c.send(req)
}

// call signs and sends one call; a transport error fails the test.
func (c *client) call(op string, body any) result {
	c.t.Helper()
	res, err := c.do(context.Background(), op, body)
	if err != nil {
		c.t.Fatalf("%s: %v", op, err)
	}
	return res
}

func (c *client) update(body any) result { c.t.Helper(); return c.call(opUpdate, body) }

func (c *client) get(catalog, id string) result {
	c.t.Helper()
	return c.call(opGet, map[string]string{"Catalog": catalog, "Identifier": id})
}

// modifiedAt reads the engagement's ModifiedAt with GetEngagement.
func (c *client) modifiedAt(catalog, id string) string {
	c.t.Helper()
	res := c.get(catalog, id)
	if res.status != http.StatusOK {
		c.t.Fatalf("GetEngagement %s: %s", id, res)
	}
	var out struct{ ModifiedAt string }
	res.decode(c.t, &out)
	return out.ModifiedAt
}

// admin sends an unsigned admin call.
func (c *client) admin(method, path string, body any) result {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(toJSON(c.t, body))
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatalf("admin request: %v", err)
	}
	res, err := c.send(req)
	if err != nil {
		c.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	return res
}

func engID(i int) string { return fmt.Sprintf("eng-%014d", i) }

func customerProject(title string) map[string]any {
	return map[string]any{"CustomerProject": map[string]any{
		"Customer": map[string]any{
			"Industry":    "Software and Internet",
			"CompanyName": "Acme",
			"WebsiteUrl":  "https://acme.example",
			"CountryCode": "US",
		},
		"Project": map[string]any{
			"Title":                title,
			"BusinessProblem":      "Needs to migrate 40 VMs to AWS",
			"TargetCompletionDate": "2026-12-31",
		},
	}}
}

func leadPayload(status string, interaction map[string]any) map[string]any {
	lead := map[string]any{
		"Customer": map[string]any{
			"CompanyName": "Acme",
			"Address":     map[string]any{"City": "Seattle", "CountryCode": "US"},
		},
	}
	if status != "" {
		lead["QualificationStatus"] = status
	}
	if interaction != nil {
		lead["Interaction"] = interaction
	}
	return map[string]any{"Lead": lead}
}

func interaction(sourceID string) map[string]any {
	return map[string]any{
		"SourceType":     "Website",
		"SourceId":       sourceID,
		"SourceName":     "Contact form",
		"CustomerAction": "Asked for a call",
		"Contact": map[string]any{
			"BusinessTitle": "CTO",
			"Email":         "jane@acme.example",
			"FirstName":     "Jane",
			"LastName":      "Doe",
		},
	}
}

func updateReq(id, contextID, lastModified, typ string, payload map[string]any) map[string]any {
	return map[string]any{
		"Catalog":                  "Sandbox",
		"EngagementIdentifier":     id,
		"ContextIdentifier":        contextID,
		"EngagementLastModifiedAt": lastModified,
		"Type":                     typ,
		"Payload":                  payload,
	}
}

// addEngagement creates a Sandbox engagement with a CustomerProject
// context "1" and a Lead context "2", both without payload, and returns its
// ModifiedAt.
func addEngagement(t *testing.T, sim *Sim, id string) string {
	t.Helper()
	err := sim.AddEngagement(NewEngagement{Id: id, Catalog: "Sandbox", Title: "Test", Contexts: []NewContext{
		{Id: "1", Type: "CustomerProject"},
		{Id: "2", Type: "Lead"},
	}})
	if err != nil {
		t.Fatalf("AddEngagement %s: %v", id, err)
	}
	st, _ := sim.Engagement(id)
	return st.ModifiedAt
}

// waitFor polls cond until it holds or the deadline passes. It waits on a
// ticker and a timer, never sleeps.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

func wantError(t *testing.T, res result, status int, name string) {
	t.Helper()
	if res.status != status || res.errType() != name {
		t.Fatalf("got %s, want %d %s", res, status, name)
	}
	var body struct {
		Type    string `json:"__type"`
		Message string
	}
	res.decode(t, &body)
	if body.Type != name || body.Message == "" {
		t.Fatalf("got body %s, want __type %s and a Message", res.body, name)
	}
}
