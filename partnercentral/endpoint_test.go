package partnercentral

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// modelPath is the service's Smithy model, kept beside the repository.
const modelPath = "../../shared/api/partnercentral-selling-2022-07-26.json"

// endpointCases are regions of every partition with the URLs the service's
// endpoint rules give them, without and with FIPS.
var endpointCases = []struct {
	partition, region, url, fipsURL string
}{
	{"aws", "us-east-1", "https://partnercentral-selling.us-east-1.api.aws", "https://partnercentral-selling-fips.us-east-1.api.aws"},
	{"aws", "eu-west-3", "https://partnercentral-selling.eu-west-3.api.aws", "https://partnercentral-selling-fips.eu-west-3.api.aws"},
	{"aws", "mx-central-1", "https://partnercentral-selling.mx-central-1.api.aws", "https://partnercentral-selling-fips.mx-central-1.api.aws"},
	{"aws", "aws-global", "https://partnercentral-selling.aws-global.api.aws", "https://partnercentral-selling-fips.aws-global.api.aws"},
	{"aws-cn", "cn-north-1", "https://partnercentral-selling.cn-north-1.api.amazonwebservices.com.cn", "https://partnercentral-selling-fips.cn-north-1.api.amazonwebservices.com.cn"},
	{"aws-cn", "cn-northwest-1", "https://partnercentral-selling.cn-northwest-1.api.amazonwebservices.com.cn", "https://partnercentral-selling-fips.cn-northwest-1.api.amazonwebservices.com.cn"},
	{"aws-cn", "aws-cn-global", "https://partnercentral-selling.aws-cn-global.api.amazonwebservices.com.cn", "https://partnercentral-selling-fips.aws-cn-global.api.amazonwebservices.com.cn"},
	{"aws-us-gov", "us-gov-west-1", "https://partnercentral-selling.us-gov-west-1.api.aws", "https://partnercentral-selling-fips.us-gov-west-1.api.aws"},
	{"aws-us-gov", "us-gov-east-1", "https://partnercentral-selling.us-gov-east-1.api.aws", "https://partnercentral-selling-fips.us-gov-east-1.api.aws"},
	{"aws-iso", "us-iso-east-1", "https://partnercentral-selling.us-iso-east-1.api.aws.ic.gov", "https://partnercentral-selling-fips.us-iso-east-1.api.aws.ic.gov"},
	{"aws-iso", "aws-iso-global", "https://partnercentral-selling.aws-iso-global.api.aws.ic.gov", "https://partnercentral-selling-fips.aws-iso-global.api.aws.ic.gov"},
	{"aws-iso-b", "us-isob-east-1", "https://partnercentral-selling.us-isob-east-1.api.aws.scloud", "https://partnercentral-selling-fips.us-isob-east-1.api.aws.scloud"},
	{"aws-iso-e", "eu-isoe-west-1", "https://partnercentral-selling.eu-isoe-west-1.api.cloud-aws.adc-e.uk", "https://partnercentral-selling-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk"},
	{"aws-iso-f", "us-isof-south-1", "https://partnercentral-selling.us-isof-south-1.api.aws.hci.ic.gov", "https://partnercentral-selling-fips.us-isof-south-1.api.aws.hci.ic.gov"},
	{"aws-eusc", "eusc-de-east-1", "https://partnercentral-selling.eusc-de-east-1.api.amazonwebservices.eu", "https://partnercentral-selling-fips.eusc-de-east-1.api.amazonwebservices.eu"},
	// A region no partition knows falls to aws, as in every SDK.
	{"aws", "xx-new-1", "https://partnercentral-selling.xx-new-1.api.aws", "https://partnercentral-selling-fips.xx-new-1.api.aws"},
}

func TestResolveEndpoint(t *testing.T) {
	for _, tt := range endpointCases {
		for _, fips := range []bool{false, true} {
			want := tt.url
			if fips {
				want = tt.fipsURL
			}
			got, err := ResolveEndpoint(EndpointParameters{Region: aws.String(tt.region), UseFIPS: aws.Bool(fips)})
			if err != nil || got != want {
				t.Errorf("%s (%s) FIPS %v: got %q, %v; want %q", tt.region, tt.partition, fips, got, err, want)
			}
		}
		if p := partitionOf(tt.region); p.id != tt.partition {
			t.Errorf("partition of %s: got %s, want %s", tt.region, p.id, tt.partition)
		}
	}

	errorCases := []struct {
		name   string
		params EndpointParameters
		want   string
	}{
		{"no region", EndpointParameters{UseFIPS: aws.Bool(false)}, errMissingRegion},
		{"empty region", EndpointParameters{Region: aws.String("")}, errMissingRegion},
		{"FIPS with a custom endpoint", EndpointParameters{Region: aws.String("us-east-1"), UseFIPS: aws.Bool(true), Endpoint: aws.String("https://example.com")}, errFIPSCustomEndpoint},
	}
	for _, tt := range errorCases {
		if got, err := ResolveEndpoint(tt.params); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %q, %v; want the error %q", tt.name, got, err, tt.want)
		}
	}
	got, err := ResolveEndpoint(EndpointParameters{Endpoint: aws.String("https://example.com"), UseFIPS: aws.Bool(false)})
	if err != nil || got != "https://example.com" {
		t.Errorf("custom endpoint without a region: got %q, %v; want https://example.com", got, err)
	}
}

// recordingHTTP answers every request 200 {} and keeps the last one.
type recordingHTTP struct{ last *http.Request }

func (r *recordingHTTP) Do(req *http.Request) (*http.Response, error) {
	r.last = req
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{}`))}, nil
}

func TestOptionsBindEndpointRules(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		wantURL     string
		wantSigning string // the credential scope's region
		wantErr     string
	}{
		{"region", Options{Region: "us-gov-west-1"}, "https://partnercentral-selling.us-gov-west-1.api.aws/", "us-gov-west-1", ""},
		{"FIPS option", Options{Region: "us-isob-east-1", EndpointOptions: EndpointResolverOptions{UseFIPSEndpoint: aws.FIPSEndpointStateEnabled}},
			"https://partnercentral-selling-fips.us-isob-east-1.api.aws.scloud/", "us-isob-east-1", ""},
		{"FIPS disabled", Options{Region: "us-east-1", EndpointOptions: EndpointResolverOptions{UseFIPSEndpoint: aws.FIPSEndpointStateDisabled}},
			"https://partnercentral-selling.us-east-1.api.aws/", "us-east-1", ""},
		{"fips- pseudo-region", Options{Region: "fips-us-east-1"}, "https://partnercentral-selling-fips.us-east-1.api.aws/", "us-east-1", ""},
		{"-fips pseudo-region", Options{Region: "eusc-de-east-1-fips"}, "https://partnercentral-selling-fips.eusc-de-east-1.api.amazonwebservices.eu/", "eusc-de-east-1", ""},
		{"endpoint", Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:4567")}, "http://127.0.0.1:4567/", "us-east-1", ""},
		{"FIPS with an endpoint", Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:4567"), EndpointOptions: EndpointResolverOptions{UseFIPSEndpoint: aws.FIPSEndpointStateEnabled}},
			"", "", errFIPSCustomEndpoint},
		{"no region", Options{}, "", "", errMissingRegion},
		{"region not a host label", Options{Region: "us-east-1.evil.example"}, "", "", "not a valid host name label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingHTTP{}
			tt.opts.Credentials = credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
			tt.opts.HTTPClient = rec
			c := New(tt.opts)
			_, err := c.GetEngagement(context.Background(), &GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String(engID)})
			_, epErr := c.Endpoint()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || epErr == nil || !strings.Contains(epErr.Error(), tt.wantErr) {
					t.Errorf("got call error %v and Endpoint error %v, want both to say %q", err, epErr, tt.wantErr)
				}
				if rec.last != nil {
					t.Errorf("got a request to %s, want none", rec.last.URL)
				}
				return
			}
			if err != nil || rec.last == nil {
				t.Fatalf("got %v, want a request", err)
			}
			if got := rec.last.URL.String(); got != tt.wantURL {
				t.Errorf("URL: got %s, want %s", got, tt.wantURL)
			}
			scope := "/" + tt.wantSigning + "/" + SigningName + "/aws4_request"
			if auth := rec.last.Header.Get("Authorization"); !strings.Contains(auth, scope) {
				t.Errorf("Authorization: got %q, want the scope %s", auth, scope)
			}
		})
	}
}

func TestFIPSFromConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		shared  string // the shared config file
		want    string
		wantErr string
	}{
		{"nothing set", nil, "", "https://partnercentral-selling.us-east-1.api.aws", ""},
		{"AWS_USE_FIPS_ENDPOINT", map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, "", "https://partnercentral-selling-fips.us-east-1.api.aws", ""},
		{"use_fips_endpoint", nil, "[default]\nuse_fips_endpoint = true\n", "https://partnercentral-selling-fips.us-east-1.api.aws", ""},
		{"the environment before the shared config", map[string]string{"AWS_USE_FIPS_ENDPOINT": "false"}, "[default]\nuse_fips_endpoint = true\n", "https://partnercentral-selling.us-east-1.api.aws", ""},
		{"FIPS and AWS_ENDPOINT_URL", map[string]string{"AWS_USE_FIPS_ENDPOINT": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:4567"}, "", "", errFIPSCustomEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.shared != "" {
				if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte(tt.shared), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")))
			if err != nil {
				t.Fatal(err)
			}
			got, err := NewFromConfig(cfg).Endpoint()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %q, %v; want the error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestEndpointRulesFromModel evaluates the endpoint rule set of the model
// in ../shared/api, as an SDK's rules engine would, and checks that
// ResolveEndpoint gives the same answer for every region of endpointCases,
// with and without FIPS and a custom endpoint; it also runs the model's own
// endpoint tests. A rule set that uses a function this evaluator does not
// know fails the test: the rules changed and ResolveEndpoint must follow.
func TestEndpointRulesFromModel(t *testing.T) {
	raw, err := os.ReadFile(modelPath)
	if os.IsNotExist(err) {
		t.Skipf("model not found at %s; the endpoint rules cannot be compared", modelPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	var model struct {
		Shapes map[string]struct {
			Type   string
			Traits map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &model); err != nil {
		t.Fatal(err)
	}
	var ruleSet, ruleTests json.RawMessage
	for _, s := range model.Shapes {
		if s.Type == "service" {
			ruleSet, ruleTests = s.Traits["smithy.rules#endpointRuleSet"], s.Traits["smithy.rules#endpointTests"]
		}
	}
	var rs struct {
		Parameters map[string]struct {
			BuiltIn string
			Default any
		}
		Rules []rule
	}
	if err := json.Unmarshal(ruleSet, &rs); err != nil || len(rs.Rules) == 0 {
		t.Fatalf("no endpoint rule set in the model: %v", err)
	}
	want := map[string]string{"Region": "AWS::Region", "UseFIPS": "AWS::UseFIPS", "Endpoint": "SDK::Endpoint"}
	for name, p := range rs.Parameters {
		if want[name] != p.BuiltIn {
			t.Errorf("rule set parameter %s (built-in %q): EndpointParameters does not bind it", name, p.BuiltIn)
		}
	}
	if len(rs.Parameters) != len(want) {
		t.Errorf("rule set parameters: got %d, want %v", len(rs.Parameters), want)
	}

	check := func(name string, params map[string]any) (string, string) {
		t.Helper()
		for k, p := range rs.Parameters {
			if _, ok := params[k]; !ok && p.Default != nil {
				params[k] = p.Default
			}
		}
		wantURL, wantErr := evalRules(t, rs.Rules, params)
		var ep EndpointParameters
		if v, ok := params["Region"].(string); ok {
			ep.Region = &v
		}
		if v, ok := params["UseFIPS"].(bool); ok {
			ep.UseFIPS = &v
		}
		if v, ok := params["Endpoint"].(string); ok {
			ep.Endpoint = &v
		}
		got, err := ResolveEndpoint(ep)
		switch {
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: got %q, %v; the rules give the error %q", name, got, err, wantErr)
		case wantErr == "" && (err != nil || got != wantURL):
			t.Errorf("%s: got %q, %v; the rules give %q", name, got, err, wantURL)
		}
		return wantURL, wantErr
	}
	for _, tt := range endpointCases {
		for _, fips := range []bool{false, true} {
			for _, endpoint := range []string{"", "https://example.com"} {
				params := map[string]any{"Region": tt.region, "UseFIPS": fips}
				if endpoint != "" {
					params["Endpoint"] = endpoint
				}
				check(tt.region, params)
			}
		}
	}

	var cases struct {
		TestCases []struct {
			Documentation string
			Params        map[string]any
			Expect        struct {
				Endpoint struct{ URL string }
				Error    string
			}
		}
	}
	if err := json.Unmarshal(ruleTests, &cases); err != nil || len(cases.TestCases) == 0 {
		t.Fatalf("no endpoint tests in the model: %v", err)
	}
	for _, tc := range cases.TestCases {
		if tc.Params == nil {
			tc.Params = map[string]any{}
		}
		url, msg := check(tc.Documentation, tc.Params)
		if url != tc.Expect.Endpoint.URL || msg != tc.Expect.Error {
			t.Errorf("%s: the evaluator gives %q, %q; the model's test expects %q, %q", tc.Documentation, url, msg, tc.Expect.Endpoint.URL, tc.Expect.Error)
		}
	}
}

// rule is one rule of a Smithy endpoint rule set.
type rule struct {
	Type       string
	Conditions []struct {
		Fn     string
		Argv   []json.RawMessage
		Assign string
	}
	Rules    []rule
	Endpoint struct{ URL json.RawMessage }
	Error    string
}

// evalRules runs the rules in order and returns the first endpoint URL or
// error reached.
func evalRules(t *testing.T, rules []rule, scope map[string]any) (url, errMsg string) {
	t.Helper()
	for _, r := range rules {
		local := maps.Clone(scope)
		if !evalConditions(t, r, local) {
			continue
		}
		switch r.Type {
		case "endpoint":
			return expand(t, evalArg(t, r.Endpoint.URL, local), local), ""
		case "error":
			return "", r.Error
		case "tree":
			return evalRules(t, r.Rules, local)
		default:
			t.Fatalf("rule type %q: the evaluator does not know it", r.Type)
		}
	}
	t.Fatalf("no rule matched %v", scope)
	return "", ""
}

func evalConditions(t *testing.T, r rule, scope map[string]any) bool {
	t.Helper()
	for _, c := range r.Conditions {
		args := make([]any, len(c.Argv))
		for i, a := range c.Argv {
			args[i] = evalArg(t, a, scope)
		}
		var v any
		switch c.Fn {
		case "isSet":
			v = args[0] != nil
		case "booleanEquals", "stringEquals":
			v = args[0] == args[1]
		case "not":
			v = args[0] == false
		case "aws.partition":
			region, _ := args[0].(string)
			v = map[string]any{"name": partitionOf(region).id, "dualStackDnsSuffix": partitionOf(region).dualStackDNSSuffix}
		default:
			t.Fatalf("rule function %q: the evaluator does not know it", c.Fn)
		}
		if v == nil || v == false {
			return false
		}
		if c.Assign != "" {
			scope[c.Assign] = v
		}
	}
	return true
}

// evalArg is a literal or a {"ref": name}; a nested {"fn": ...}, which
// this rule set does not use, fails the test.
func evalArg(t *testing.T, raw json.RawMessage, scope map[string]any) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]any); ok {
		ref, ok := m["ref"].(string)
		if !ok {
			t.Fatalf("argument %s: the evaluator knows only literals and refs", raw)
		}
		return scope[ref]
	}
	return v
}

// expand fills a URL template's {Name} and {Name#attribute}.
func expand(t *testing.T, v any, scope map[string]any) string {
	t.Helper()
	templateVar := regexp.MustCompile(`\{([A-Za-z]+)(?:#([A-Za-z]+))?\}`)
	s, ok := v.(string)
	if !ok {
		t.Fatalf("endpoint URL %v is not a string", v)
	}
	return templateVar.ReplaceAllStringFunc(s, func(m string) string {
		g := templateVar.FindStringSubmatch(m)
		val := scope[g[1]]
		if g[2] != "" {
			val = val.(map[string]any)[g[2]]
		}
		return val.(string)
	})
}

// TestPartitionsMatchSDK compares the partition table with the
// partitions.json of the aws-sdk-go-v2 module this project builds with:
// ids, regexes and dual-stack suffixes, no region with outputs of its own,
// and every listed region in its partition.
func TestPartitionsMatchSDK(t *testing.T) {
	path := sdkPartitionsFile(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Partitions []struct {
			ID          string
			RegionRegex string
			Regions     map[string]map[string]any
			Outputs     struct{ DualStackDNSSuffix string }
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ours := partitions()
	if len(doc.Partitions) != len(ours) {
		t.Errorf("got %d partitions, the SDK has %d", len(ours), len(doc.Partitions))
	}
	for i, p := range doc.Partitions {
		if i >= len(ours) {
			break
		}
		o := ours[i]
		if o.id != p.ID || o.regionRegex != p.RegionRegex || o.dualStackDNSSuffix != p.Outputs.DualStackDNSSuffix {
			t.Errorf("partition %d: got %s %s %s, the SDK has %s %s %s", i, o.id, o.regionRegex, o.dualStackDNSSuffix, p.ID, p.RegionRegex, p.Outputs.DualStackDNSSuffix)
		}
		re := regexp.MustCompile(p.RegionRegex)
		for name, region := range p.Regions {
			for k := range region {
				if k != "description" {
					t.Errorf("region %s overrides %s: the table does not carry region outputs", name, k)
				}
			}
			if got := partitionOf(name).id; got != p.ID {
				t.Errorf("region %s: got partition %s, want %s", name, got, p.ID)
			}
			if !re.MatchString(name) && !slices.Contains(o.regions, name) {
				t.Errorf("region %s of %s is not matched by its regex and not listed", name, p.ID)
			}
		}
	}
}

// sdkPartitionsFile finds partitions.json in the module cache. Without it
// the test skips, except in CI, where the modules are always downloaded.
func sdkPartitionsFile(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("aws-sdk-go-v2's partitions.json: %s", why)
		}
		t.Skipf("aws-sdk-go-v2's partitions.json: %s", why)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		missing("no go command to find the module")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		missing("go list: " + strings.TrimSpace(stderr.String()))
	}
	path := filepath.Join(dir, "internal", "endpoints", "awsrulesfn", "partitions.json")
	if _, err := os.Stat(path); err != nil {
		missing(err.Error())
	}
	return path
}
