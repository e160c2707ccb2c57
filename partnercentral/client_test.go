package partnercentral

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

const (
	engID     = "eng-abcdefghij1234"
	accessKey = "AKIDPCSYNCTEST"
	secretKey = "pcsync-test-secret"
)

const projectPayload = `{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"Migration","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}`

// startSim runs a simulator with one engagement and returns it with a
// client pointed at it.
func startSim(t *testing.T, opts pcsim.Options) (*pcsim.Server, *Client) {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{accessKey: secretKey}
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	srv, err := pcsim.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	err = srv.AddEngagement(pcsim.NewEngagement{Id: engID, Catalog: "Sandbox", Contexts: []pcsim.NewContext{
		{Id: "1", Type: types.EngagementContextTypeCustomerProject, Payload: json.RawMessage(projectPayload)},
		{Id: "2", Type: types.EngagementContextTypeLead},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, newTestClient(srv.URL, secretKey)
}

func newTestClient(endpoint, secret string) *Client {
	return New(Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

func projectInput(t *testing.T, modifiedAt string) *UpdateEngagementContextInput {
	t.Helper()
	p, err := types.UnmarshalUpdateEngagementContextPayload([]byte(projectPayload))
	if err != nil {
		t.Fatal(err)
	}
	p.(*types.UpdateEngagementContextPayloadMemberCustomerProject).Value.Project.Title = aws.String("Migration, phase 2")
	return &UpdateEngagementContextInput{
		Catalog:                  aws.String("Sandbox"),
		EngagementIdentifier:     aws.String(engID),
		ContextIdentifier:        aws.String("1"),
		EngagementLastModifiedAt: aws.String(modifiedAt),
		Type:                     types.EngagementContextTypeCustomerProject,
		Payload:                  p,
	}
}

func getEngagement(t *testing.T, c *Client) *GetEngagementOutput {
	t.Helper()
	out, err := c.GetEngagement(context.Background(), &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String(engID)})
	if err != nil {
		t.Fatalf("GetEngagement: %v", err)
	}
	return out
}

func TestUpdateRoundTripsTimestamps(t *testing.T) {
	srv, c := startSim(t, pcsim.Options{WriteRPS: 100, WriteBurst: 10})
	ctx := context.Background()

	got := getEngagement(t, c)
	state, _ := srv.Engagement(engID)
	if *got.ModifiedAt != state.ModifiedAt {
		t.Fatalf("GetEngagement ModifiedAt: got %q, want the server's %q byte for byte", *got.ModifiedAt, state.ModifiedAt)
	}
	if len(got.Contexts) != 2 {
		t.Fatalf("Contexts: got %d, want 2", len(got.Contexts))
	}
	cp, ok := got.Contexts[0].Payload.(*types.EngagementContextPayloadMemberCustomerProject)
	if !ok || *cp.Value.Customer.CompanyName != "Acme" {
		t.Fatalf("context 1 payload: got %#v, want the CustomerProject with Acme", got.Contexts[0].Payload)
	}

	out, err := c.UpdateEngagementContext(ctx, projectInput(t, *got.ModifiedAt))
	if err != nil {
		t.Fatalf("UpdateEngagementContext: %v", err)
	}
	state, _ = srv.Engagement(engID)
	if *out.EngagementLastModifiedAt != state.ModifiedAt {
		t.Errorf("EngagementLastModifiedAt: got %q, want the server's %q", *out.EngagementLastModifiedAt, state.ModifiedAt)
	}
	if *out.EngagementId != engID || *out.ContextId != "1" || !strings.HasPrefix(*out.EngagementArn, "arn:") {
		t.Errorf("output: got %+v, want the engagement's id, arn and context", out)
	}
	// The returned timestamp is good for the next write with no re-read.
	if _, err := c.UpdateEngagementContext(ctx, projectInput(t, *out.EngagementLastModifiedAt)); err != nil {
		t.Errorf("second update with the returned timestamp: %v", err)
	}
	if w := state.Contexts[0].Writes; w != 1 {
		t.Errorf("writes after the first update: got %d, want 1", w)
	}
}

// TestSDKTimestampForms checks the simulator against what an official SDK
// sends back, through this client, which sends the string it is given: the
// instant in smithy-go's form matches; the previous millisecond conflicts.
func TestSDKTimestampForms(t *testing.T) {
	_, c := startSim(t, pcsim.Options{WriteRPS: -1})
	modified := *getEngagement(t, c).ModifiedAt
	ts, err := smithytime.ParseDateTime(modified)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateEngagementContext(context.Background(), projectInput(t, smithytime.FormatDateTime(ts.Add(-time.Millisecond))))
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("the previous millisecond of %q: got %v, want *types.ConflictException", modified, err)
	}
	if _, err := c.UpdateEngagementContext(context.Background(), projectInput(t, smithytime.FormatDateTime(ts))); err != nil {
		t.Errorf("%q as smithy-go writes it: got %v, want success", modified, err)
	}
}

func TestErrorTypes(t *testing.T) {
	stale := "2020-01-01T00:00:00.000000Z"
	tests := []struct {
		name   string
		opts   pcsim.Options
		before func(t *testing.T, c *Client) // calls made first, e.g. to spend a quota
		call   func(c *Client) error
		status int
		check  func(t *testing.T, err error)
	}{
		{
			name: "conflict",
			call: func(c *Client) error {
				_, err := c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
				return err
			},
			status: 409,
			check:  wantAs[*types.ConflictException],
		},
		{
			name: "throttling",
			opts: pcsim.Options{WriteRPS: 0.001, WriteBurst: 1},
			before: func(t *testing.T, c *Client) {
				_, _ = c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
			},
			call: func(c *Client) error {
				_, err := c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
				return err
			},
			status: 429,
			check:  wantAs[*types.ThrottlingException],
		},
		{
			name: "internal server error",
			opts: pcsim.Options{Faults: pcsim.Faults{Error5xx: 1}},
			call: func(c *Client) error {
				_, err := c.GetEngagement(context.Background(), &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String(engID)})
				return err
			},
			status: 500,
			check: func(t *testing.T, err error) {
				var e *types.InternalServerException
				if !errors.As(err, &e) || e.ErrorFault() != smithy.FaultServer {
					t.Errorf("got %v, want *types.InternalServerException with a server fault", err)
				}
			},
		},
		{
			name: "validation",
			call: func(c *Client) error {
				in := projectInput(t, stale)
				cp := in.Payload.(*types.UpdateEngagementContextPayloadMemberCustomerProject)
				cp.Value.Customer.CountryCode = "USA"
				cp.Value.Project.BusinessProblem = aws.String("short")
				_, err := c.UpdateEngagementContext(context.Background(), in)
				return err
			},
			status: 400,
			check: func(t *testing.T, err error) {
				var e *types.ValidationException
				if !errors.As(err, &e) {
					t.Fatalf("got %v, want *types.ValidationException", err)
				}
				if e.Reason != types.ValidationExceptionReasonRequestValidationFailed {
					t.Errorf("Reason: got %q, want REQUEST_VALIDATION_FAILED", e.Reason)
				}
				fields := map[string]types.ValidationExceptionErrorCode{}
				for _, f := range e.ErrorList {
					fields[aws.ToString(f.FieldName)] = f.Code
				}
				want := map[string]types.ValidationExceptionErrorCode{
					"Payload.CustomerProject.Customer.CountryCode":    types.ValidationExceptionErrorCodeInvalidEnumValue,
					"Payload.CustomerProject.Project.BusinessProblem": types.ValidationExceptionErrorCodeInvalidValue,
				}
				for f, code := range want {
					if fields[f] != code {
						t.Errorf("ErrorList[%s]: got %q, want %q (list %v)", f, fields[f], code, fields)
					}
				}
			},
		},
		{
			name: "resource not found",
			call: func(c *Client) error {
				_, err := c.GetEngagement(context.Background(), &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String("eng-zzzzzzzzzzzzzz")})
				return err
			},
			status: 404,
			check:  wantAs[*types.ResourceNotFoundException],
		},
		{
			name: "access denied",
			opts: pcsim.Options{Faults: pcsim.Faults{DenyAccess: true}},
			call: func(c *Client) error {
				_, err := c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
				return err
			},
			status: 403,
			check:  wantAs[*types.AccessDeniedException],
		},
		{
			name: "service quota exceeded",
			opts: pcsim.Options{WriteRPS: -1, WriteBudget: 1},
			before: func(t *testing.T, c *Client) {
				_, _ = c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
			},
			call: func(c *Client) error {
				_, err := c.UpdateEngagementContext(context.Background(), projectInput(t, stale))
				return err
			},
			status: 402,
			check:  wantAs[*types.ServiceQuotaExceededException],
		},
		{
			name:   "unknown error keeps its code",
			call:   func(c *Client) error { return newTestClient(*c.options.BaseEndpoint, "wrong-secret").invokeGet() },
			status: 403,
			check: func(t *testing.T, err error) {
				var generic *smithy.GenericAPIError
				if !errors.As(err, &generic) || generic.Code != "InvalidSignatureException" {
					t.Errorf("got %v, want *smithy.GenericAPIError with code InvalidSignatureException", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := startSim(t, tt.opts)
			if tt.before != nil {
				tt.before(t, c)
			}
			err := tt.call(c)
			if err == nil {
				t.Fatal("got no error")
			}
			var op *smithy.OperationError
			if !errors.As(err, &op) || op.Service() != ServiceID {
				t.Errorf("got %T, want a *smithy.OperationError of %s", err, ServiceID)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tt.status {
				t.Errorf("HTTP status: got %v, want %d", err, tt.status)
			} else if re.ServiceRequestID() == "" {
				t.Errorf("request id: got none, want the x-amzn-RequestId header")
			}
			tt.check(t, err)
		})
	}
}

// invokeGet is a GetEngagement of the test engagement.
func (c *Client) invokeGet() error {
	_, err := c.GetEngagement(context.Background(), &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String(engID)})
	return err
}

func wantAs[E error](t *testing.T, err error) {
	t.Helper()
	var e E
	if !errors.As(err, &e) {
		t.Errorf("got %v (%T), want %T", err, err, e)
	}
}

func TestSignatureIsChecked(t *testing.T) {
	srv, c := startSim(t, pcsim.Options{})
	if err := c.invokeGet(); err != nil {
		t.Fatalf("signed with the right secret: got %v, want success", err)
	}
	// An unsigned request, as a plain HTTP client would send it.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"Catalog":"Sandbox","Identifier":"`+engID+`"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", TargetPrefix+"GetEngagement")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned request: got status %d, want 403", resp.StatusCode)
	}
	err = newTestClient(srv.URL, "wrong-secret").invokeGet()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("wrong secret: got %v, want a 403", err)
	}
}

func TestEndpointResolutionOrder(t *testing.T) {
	explicit, _ := startSim(t, pcsim.Options{})
	specific, _ := startSim(t, pcsim.Options{})
	global, _ := startSim(t, pcsim.Options{})
	tests := []struct {
		name     string
		env      map[string]string
		explicit bool
		want     string // URL, or "regional"
	}{
		{"explicit option wins", map[string]string{"AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING": specific.URL, "AWS_ENDPOINT_URL": global.URL}, true, explicit.URL},
		{"service variable before global", map[string]string{"AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING": specific.URL, "AWS_ENDPOINT_URL": global.URL}, false, specific.URL},
		{"global variable", map[string]string{"AWS_ENDPOINT_URL": global.URL}, false, global.URL},
		{"regional default", nil, false, "https://partnercentral-selling.us-east-1.api.aws"},
		{"configured endpoints ignored", map[string]string{"AWS_ENDPOINT_URL": global.URL, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, false, "https://partnercentral-selling.us-east-1.api.aws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := config.LoadDefaultConfig(context.Background(),
				config.WithRegion("us-east-1"),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")))
			if err != nil {
				t.Fatal(err)
			}
			var optFns []func(*Options)
			if tt.explicit {
				optFns = append(optFns, func(o *Options) { o.BaseEndpoint = aws.String(explicit.URL) })
			}
			c := NewFromConfig(cfg, optFns...)
			got, err := c.Endpoint()
			if err != nil || got != tt.want {
				t.Fatalf("Endpoint: got %q, %v; want %q", got, err, tt.want)
			}
			if !strings.HasPrefix(tt.want, "http://127.0.0.1") {
				return
			}
			// The call goes where Endpoint says, and only there.
			sims := []*pcsim.Server{explicit, specific, global}
			before := make([]int, len(sims))
			for i, s := range sims {
				before[i] = s.Stats().Calls["GetEngagement"]["200"]
			}
			if err := c.invokeGet(); err != nil {
				t.Fatalf("GetEngagement: %v", err)
			}
			for i, s := range sims {
				n := s.Stats().Calls["GetEngagement"]["200"] - before[i]
				if s.URL == tt.want && n != 1 {
					t.Errorf("%s: got %d calls, want the request", s.URL, n)
				}
				if s.URL != tt.want && n != 0 {
					t.Errorf("%s: got %d calls, want none", s.URL, n)
				}
			}
		})
	}
}

// isolateAWSEnv keeps the machine's own AWS settings out of a test.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE", "AWS_REGION", "AWS_USE_FIPS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

func TestCancellationAndTimeout(t *testing.T) {
	srv, c := startSim(t, pcsim.Options{Faults: pcsim.Faults{Latency: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.invokeGetCtx(ctx)
	var canceled *aws.RequestCanceledError
	if !errors.As(err, &canceled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller's deadline: got %v, want *aws.RequestCanceledError wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("call returned after %v, want right after the deadline", d)
	}

	short := New(c.options, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	if err := short.invokeGet(); !errors.As(err, &canceled) {
		t.Errorf("client timeout: got %v, want *aws.RequestCanceledError", err)
	}

	srv.SetFaults(pcsim.Faults{Drop: 1})
	err = c.invokeGet()
	var send *smithyhttp.RequestSendError
	if !errors.As(err, &send) {
		t.Errorf("dropped connection: got %v (%T), want *smithyhttp.RequestSendError", err, err)
	}
}

func (c *Client) invokeGetCtx(ctx context.Context) error {
	_, err := c.GetEngagement(ctx, &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String(engID)})
	return err
}

func TestResponseSizeCap(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write([]byte(`{"Id":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	defer big.Close()
	c := New(newTestClient(big.URL, secretKey).options, func(o *Options) { o.MaxResponseBytes = 1 << 20 })
	err := c.invokeGet()
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("got %v, want ErrResponseTooLarge", err)
	}
}

func TestErrorCodeSanitizing(t *testing.T) {
	tests := map[string]string{
		"ConflictException": "ConflictException",
		"com.amazonaws.partnercentralselling#ConflictException":                  "ConflictException",
		"ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral/": "ThrottlingException",
		"ValidationException,SomethingElse":                                      "ValidationException",
		"aws.protocoltests#ConflictException#extra":                              "ConflictException",
		"  ": "",
	}
	for in, want := range tests {
		if got := sanitizeErrorCode(in); got != want {
			t.Errorf("sanitizeErrorCode(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestErrorNamePrecedence follows the official JavaScript SDK's awsJson1_0
// error parsing: the body's __type, then its code, then the
// X-Amzn-ErrorType header; the message from message, then Message.
func TestErrorNamePrecedence(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		body     string
		wantCode string
		wantMsg  string
	}{
		{"body __type before the header", "ThrottlingException", `{"__type":"com.amazonaws.partnercentralselling#ConflictException","Message":"stale"}`, "ConflictException", "stale"},
		{"body __type alone", "", `{"__type":"ConflictException","message":"stale"}`, "ConflictException", "stale"},
		{"body code before the header", "ThrottlingException", `{"code":"ResourceNotFoundException","Message":"gone"}`, "ResourceNotFoundException", "gone"},
		{"body Code, any case", "", `{"Code":"ResourceNotFoundException"}`, "ResourceNotFoundException", ""},
		{"__type before code", "", `{"code":"ThrottlingException","__type":"ConflictException"}`, "ConflictException", ""},
		{"header when the body names none", "ThrottlingException:http://doc.example/", `{"Message":"slow down"}`, "ThrottlingException", "slow down"},
		{"header when the body is not JSON", "InternalServerException", `<html>bad gateway</html>`, "InternalServerException", ""},
		{"empty __type falls through to the header", "ConflictException", `{"__type":""}`, "ConflictException", ""},
		{"message before Message", "", `{"__type":"ConflictException","message":"lower","Message":"upper"}`, "ConflictException", "lower"},
		{"numeric code", "", `{"code":503}`, "503", ""},
		{"nothing at all", "", ``, "UnknownError", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("X-Amzn-ErrorType", tt.header)
				}
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			err := newTestClient(srv.URL, secretKey).invokeGet()
			var api smithy.APIError
			if !errors.As(err, &api) {
				t.Fatalf("got %v (%T), want a smithy.APIError", err, err)
			}
			if api.ErrorCode() != tt.wantCode {
				t.Errorf("code: got %q, want %q", api.ErrorCode(), tt.wantCode)
			}
			if tt.wantMsg != "" && api.ErrorMessage() != tt.wantMsg {
				t.Errorf("message: got %q, want %q", api.ErrorMessage(), tt.wantMsg)
			}
			if tt.wantCode == "ConflictException" {
				wantAs[*types.ConflictException](t, err)
			}
		})
	}
}
