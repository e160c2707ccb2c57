package pcsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// The SDK's project: package.json pins the version, package-lock.json the
// whole tree; node_modules is installed by `npm ci` (.ci/run does it).
const sdkDir = "testdata/sdk-conformance"

const (
	sdkKey     = "AKIDSDKCONFORMANCE"
	sdkSecret  = "sdk-conformance-secret"
	sdkEngID   = "eng-sdkconformanc1"
	sdkProject = `{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"Migration","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}`
)

// TestOfficialJavaScriptSDK drives pcsim with the official AWS SDK for
// JavaScript v3 (testdata/sdk-conformance/conformance.mjs): GetEngagement,
// UpdateEngagementContext with the Date it returned and chained on the
// Dates each update returns, and every modeled error parsed into its SDK
// class with its fields. Then it checks the engagement's final state, the
// SDK's endpoints against ResolveEndpoint, and that this project's client
// sends, for the same input, the very request the SDK sent, apart from
// signing and the SDK's own headers.
//
// Without node or the installed SDK the test skips, except when CI is set:
// there it fails, so that CI cannot pass without running it.
func TestOfficialJavaScriptSDK(t *testing.T) {
	node := sdkInstalled(t)

	base := pcsim.Options{Region: "us-east-1", Credentials: map[string]string{sdkKey: sdkSecret}, Seed: 1}
	sim := func(change func(*pcsim.Options)) *pcsim.Sim {
		o := base
		change(&o)
		s := pcsim.New(o)
		t.Cleanup(s.Close)
		err := s.AddEngagement(pcsim.NewEngagement{Id: sdkEngID, Catalog: "Sandbox", Contexts: []pcsim.NewContext{
			{Id: "1", Type: types.EngagementContextTypeCustomerProject, Payload: json.RawMessage(`{"CustomerProject":` + sdkProject + `}`)},
			{Id: "2", Type: types.EngagementContextTypeLead},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	listen := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	mainSim := sim(func(o *pcsim.Options) { o.Unlimited = true })
	before, _ := mainSim.Engagement(sdkEngID)
	sdkRequests := &recorder{next: mainSim}
	endpoints := map[string]string{
		"main":    listen(sdkRequests),
		"reads":   listen(sim(func(o *pcsim.Options) { o.ReadRPS, o.ReadBurst, o.WriteRPS, o.WriteBudget = 1e-9, 1, -1, -1 })),
		"budget":  listen(sim(func(o *pcsim.Options) { o.WriteRPS, o.WriteBudget, o.ReadRPS = -1, 1, -1 })),
		"denied":  listen(sim(func(o *pcsim.Options) { o.Unlimited, o.Faults = true, pcsim.Faults{DenyAccess: true} })),
		"failing": listen(sim(func(o *pcsim.Options) { o.Unlimited, o.Faults = true, pcsim.Faults{Error5xx: 1} })),
	}
	regions := []string{"us-east-1", "eu-west-1", "aws-global", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1",
		"eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1", "xx-new-1"}
	conf := map[string]any{
		"region": "us-east-1", "accessKeyId": sdkKey, "secretAccessKey": sdkSecret, "endpoints": endpoints,
		"catalog": "Sandbox", "engagement": sdkEngID, "projectContext": "1", "leadContext": "2",
		"unknownEngagement": "eng-notthereatall0", "project": json.RawMessage(sdkProject), "regions": regions,
	}
	report := runNode(t, node, conf)

	t.Run("final state", func(t *testing.T) {
		after, _ := mainSim.Engagement(sdkEngID)
		if !sameInstant(t, report.Timestamps.Read, before.ModifiedAt) {
			t.Errorf("the SDK read ModifiedAt %s, want the engagement's %s", report.Timestamps.Read, before.ModifiedAt)
		}
		if !sameInstant(t, report.Timestamps.Last, after.ModifiedAt) {
			t.Errorf("the SDK's last EngagementLastModifiedAt is %s, want the engagement's ModifiedAt %s", report.Timestamps.Last, after.ModifiedAt)
		}
		var stored struct {
			CustomerProject struct{ Project struct{ Title string } }
		}
		if err := json.Unmarshal(after.Contexts[0].Payload, &stored); err != nil {
			t.Fatal(err)
		}
		if w := after.Contexts[0].Writes; w != 4 || stored.CustomerProject.Project.Title != report.LastTitle {
			t.Errorf("got %d writes and the title %q, want 4 writes and %q", w, stored.CustomerProject.Project.Title, report.LastTitle)
		}
		if after.Contexts[1].Writes != 0 {
			t.Errorf("got %d writes to the lead context, want none", after.Contexts[1].Writes)
		}
	})

	t.Run("endpoints", func(t *testing.T) {
		if len(report.Endpoints) != 2*len(regions) {
			t.Fatalf("got %d endpoints from the SDK, want %d", len(report.Endpoints), 2*len(regions))
		}
		for _, e := range report.Endpoints {
			got, err := partnercentral.ResolveEndpoint(partnercentral.EndpointParameters{Region: aws.String(e.Region), UseFIPS: aws.Bool(e.FIPS)})
			if err != nil || got != e.URL {
				t.Errorf("%s FIPS %v: ResolveEndpoint gives %q, %v; the SDK %q", e.Region, e.FIPS, got, err, e.URL)
			}
		}
	})

	t.Run("the same request from this project's client", func(t *testing.T) {
		sent := sdkRequests.all()
		ops := map[string]int{}
		for _, r := range sent {
			ops[r.header.Get("X-Amz-Target")]++
		}
		if ops[partnercentral.TargetPrefix+"GetEngagement"] == 0 || ops[partnercentral.TargetPrefix+"UpdateEngagementContext"] == 0 {
			t.Fatalf("recorded %v from the SDK, want both operations", ops)
		}
		replay := &recorder{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Write([]byte(`{}`))
		})}
		c := partnercentral.New(partnercentral.Options{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider(sdkKey, sdkSecret, ""),
			BaseEndpoint: aws.String(listen(replay)),
		})
		for i, js := range sent {
			op := strings.TrimPrefix(js.header.Get("X-Amz-Target"), partnercentral.TargetPrefix)
			if err := replayCall(t.Context(), c, op, js.body); err != nil {
				t.Fatalf("request %d (%s) %s: our client: %v", i, op, js.body, err)
			}
			ours := replay.all()[i]
			for _, d := range wireDiff(js, ours) {
				t.Errorf("request %d (%s): %s", i, op, d)
			}
		}
	})
}

// ignoredHeader reports the headers that differ between any two SDKs by
// design: the signature, its date and the payload hash only some SDKs send,
// the SDK's name and version, its per-call ids and retry bookkeeping, and
// node's Connection: keep-alive (HTTP/1.1's default, which Go does not
// spell out).
func ignoredHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
		"User-Agent", "X-Amz-User-Agent", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request",
		"Connection":
		return true
	}
	return false
}

// wireDiff lists how two requests differ beyond the ignored headers.
func wireDiff(js, ours recorded) []string {
	var diffs []string
	if js.method != ours.method || js.path != ours.path {
		diffs = append(diffs, fmt.Sprintf("SDK %s %s, ours %s %s", js.method, js.path, ours.method, ours.path))
	}
	if js.contentLength != ours.contentLength {
		diffs = append(diffs, fmt.Sprintf("Content-Length: SDK %d, ours %d", js.contentLength, ours.contentLength))
	}
	if !bytes.Equal(js.body, ours.body) {
		diffs = append(diffs, fmt.Sprintf("body:\n SDK  %s\n ours %s", js.body, ours.body))
	}
	names := map[string]bool{}
	for k := range js.header {
		names[k] = true
	}
	for k := range ours.header {
		names[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if ignoredHeader(k) {
			continue
		}
		if a, b := js.header.Values(k), ours.header.Values(k); !slices.Equal(a, b) {
			diffs = append(diffs, fmt.Sprintf("header %s: SDK %q, ours %q", k, a, b))
		}
	}
	// Both sign the same headers, bar the ones only one of them sends.
	if a, b := signedHeaders(js), signedHeaders(ours); !slices.Equal(a, b) {
		diffs = append(diffs, fmt.Sprintf("signed headers: SDK %v, ours %v", a, b))
	}
	return diffs
}

// signedHeaders is the SignedHeaders list of a request, less the headers
// that ignoredHeader says only one SDK may send.
func signedHeaders(r recorded) []string {
	_, rest, _ := strings.Cut(r.header.Get("Authorization"), "SignedHeaders=")
	list, _, _ := strings.Cut(rest, ",")
	var out []string
	for _, h := range strings.Split(list, ";") {
		if !ignoredHeader(h) {
			out = append(out, h)
		}
	}
	return out
}

// replayCall makes the call a recorded SDK request made, with this
// project's client, from the request's own body.
func replayCall(ctx context.Context, c *partnercentral.Client, op string, body []byte) error {
	switch op {
	case "GetEngagement":
		var in partnercentral.GetEngagementInput
		if err := json.Unmarshal(body, &in); err != nil {
			return err
		}
		_, err := c.GetEngagement(ctx, &in)
		return err
	case "UpdateEngagementContext":
		var in partnercentral.UpdateEngagementContextInput
		if err := json.Unmarshal(body, &in); err != nil {
			return err
		}
		_, err := c.UpdateEngagementContext(ctx, &in)
		return err
	}
	return fmt.Errorf("operation %q: not one this client makes", op)
}

// recorded is a request as the server received it.
type recorded struct {
	method, path  string
	header        http.Header
	contentLength int64
	body          []byte
}

// recorder keeps every request it passes on to next.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), contentLength: r.ContentLength, body: body})
	rec.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// sdkReport is what conformance.mjs prints.
type sdkReport struct {
	Checks     int
	Timestamps struct{ Read, Last string }
	LastTitle  string
	Endpoints  []struct {
		Region string
		FIPS   bool
		URL    string
	}
}

// runNode runs the script with conf and returns its report; a failed
// check fails the test with the script's own account of it.
func runNode(t *testing.T, node string, conf map[string]any) sdkReport {
	t.Helper()
	confJSON, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), node, "conformance.mjs")
	cmd.Dir = sdkDir
	// Nothing of this machine's AWS settings: no profile, no shared files,
	// no FIPS or endpoint variables, no instance metadata.
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"PCSIM_CONFORMANCE=" + string(confJSON),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("node conformance.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	if runErr != nil {
		t.Fatalf("the official SDK against pcsim: %v", runErr)
	}
	var r sdkReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report %q: %v", stdout.String(), err)
	}
	if r.Checks == 0 {
		t.Fatal("the script made no checks")
	}
	return r
}

// sdkInstalled returns node's path, or skips (fails, in CI) when node or
// the pinned SDK is not installed.
func sdkInstalled(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; install it with `cd partnercentral/pcsim/" + sdkDir + " && npm ci` (bash .ci/run does)"
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg + ". CI is set, so the test may not skip")
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not installed (%v)", err)
	}
	var pinned struct{ Dependencies map[string]string }
	var installed struct{ Version string }
	const pkg = "@aws-sdk/client-partnercentral-selling"
	if err := readJSON(filepath.Join(sdkDir, "package.json"), &pinned); err != nil {
		t.Fatal(err)
	}
	if err := readJSON(filepath.Join(sdkDir, "node_modules", pkg, "package.json"), &installed); err != nil {
		unavailable("%s is not installed (%v)", pkg, err)
	}
	if want := pinned.Dependencies[pkg]; installed.Version != want {
		unavailable("%s %s is installed, package.json pins %s", pkg, installed.Version, want)
	}
	return node
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func sameInstant(t *testing.T, a, b string) bool {
	t.Helper()
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		t.Fatalf("timestamps %q, %q: %v, %v", a, b, errA, errB)
	}
	return ta.Equal(tb)
}
