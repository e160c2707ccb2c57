// Package partnercentral is a small client for the two Partner Central
// Selling API operations pcsync calls: UpdateEngagementContext and
// GetEngagement. It speaks awsJson1_0 over HTTPS, signs every request with
// SigV4, and keeps the official module's Go names
// (github.com/aws/aws-sdk-go-v2/service/partnercentralselling), which the Go
// module proxy does not serve here, so that swapping it in later is a small
// change.
//
// The client makes exactly one attempt per call: retries, backoff and rate
// limiting belong to the sync engine (package retry), which sees every
// error. Errors come back the way the official SDK returns them: a
// *smithy.OperationError around an *awshttp.ResponseError (HTTP status,
// request id) around the modeled error type from package types, so
// errors.As(err, &conflict) with conflict *types.ConflictException works,
// and an unmodeled error is a *smithy.GenericAPIError that keeps its code.
//
// Timestamps are kept as the exact strings the service sent, and an
// EngagementLastModifiedAt goes back byte for byte: the official SDKs send
// their own millisecond form of the instant instead, which the service must
// accept, but the service's own string is right whatever precision it
// compares at.
package partnercentral

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

const (
	// ServiceID is the service's SDK id; it also names the service-specific
	// endpoint variable AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING.
	ServiceID = "PartnerCentral Selling"
	// SigningName is the SigV4 service name.
	SigningName = "partnercentral-selling"
	// TargetPrefix prefixes the operation name in the X-Amz-Target header.
	TargetPrefix = "AWSPartnerCentralSelling."

	// DefaultTimeout bounds one call, from sending the request to reading
	// the whole response.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxResponseBytes caps how much of a response body is read.
	// The largest legitimate answer, a GetEngagement with five full
	// contexts, is far below it.
	DefaultMaxResponseBytes = 4 << 20
)

// HTTPClient sends one HTTP request. *http.Client satisfies it.
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// Options configure a Client.
type Options struct {
	// Region is the AWS region to sign for and, without BaseEndpoint, to
	// send to. The service lives in us-east-1.
	Region string
	// EndpointOptions choose among the service's endpoints (FIPS).
	EndpointOptions EndpointResolverOptions
	// Credentials sign every request. Required.
	Credentials aws.CredentialsProvider
	// BaseEndpoint overrides the endpoint derived from Region, e.g.
	// http://127.0.0.1:4567 for the simulator.
	BaseEndpoint *string
	// HTTPClient sends the requests; nil means a client tuned for many
	// concurrent calls to one host.
	HTTPClient HTTPClient
	// Timeout bounds one call; 0 means DefaultTimeout, negative means none
	// beyond the caller's context.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// Client calls the Partner Central Selling API. It is safe for concurrent
// use by any number of goroutines.
type Client struct {
	options  Options
	endpoint resolvedEndpoint // of options, resolved once
	signer   *v4.Signer
}

// New returns a client for the given options. optFns run last and win.
func New(options Options, optFns ...func(*Options)) *Client {
	for _, fn := range optFns {
		fn(&options)
	}
	if options.HTTPClient == nil {
		options.HTTPClient = &http.Client{Transport: newTransport()}
	}
	if options.Timeout == 0 {
		options.Timeout = DefaultTimeout
	}
	if options.MaxResponseBytes <= 0 {
		options.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if options.Now == nil {
		options.Now = time.Now
	}
	return &Client{options: options, endpoint: options.resolveEndpoint(), signer: v4.NewSigner()}
}

// NewFromConfig returns a client that takes its region, credentials and
// endpoint from an aws.Config, as config.LoadDefaultConfig builds it from
// the environment, the shared files, SSO, web identity (IRSA) or IMDS.
//
// The endpoint is, first found wins: an explicit BaseEndpoint set by
// optFns; AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING (or the services section
// of the shared config); AWS_ENDPOINT_URL; then the service's endpoint for
// the region and its partition (see ResolveEndpoint), the FIPS one when
// AWS_USE_FIPS_ENDPOINT or the shared config's use_fips_endpoint is true.
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns the configured ones off, as in
// every AWS SDK. FIPS with a configured endpoint is an error of every call,
// as the service's endpoint rules have it.
func NewFromConfig(cfg aws.Config, optFns ...func(*Options)) *Client {
	o := Options{
		Region:      cfg.Region,
		Credentials: cfg.Credentials,
	}
	if ep, ok := configuredEndpoint(cfg); ok {
		o.BaseEndpoint = aws.String(ep)
	}
	o.EndpointOptions.UseFIPSEndpoint = configuredFIPS(cfg)
	// The SDK's default HTTP client keeps only 10 idle connections per host,
	// too few for a worker pool talking to one endpoint; widen it but keep
	// its TLS settings (a custom CA bundle, say).
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		o.HTTPClient = bc.WithTransportOptions(tuneTransport)
	}
	return New(o, optFns...)
}

// endpointSource is what config.EnvConfig and config.SharedConfig implement
// for service-specific endpoints (AWS_ENDPOINT_URL_<SERVICE>).
type endpointSource interface {
	GetServiceBaseEndpoint(ctx context.Context, sdkID string) (string, bool, error)
}

type ignoreEndpointsSource interface {
	GetIgnoreConfiguredEndpoints(ctx context.Context) (bool, bool, error)
}

func configuredEndpoint(cfg aws.Config) (string, bool) {
	ctx := context.Background()
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(ignoreEndpointsSource); ok {
			if ignore, found, err := s.GetIgnoreConfiguredEndpoints(ctx); err == nil && found {
				if ignore {
					return "", false
				}
				break
			}
		}
	}
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(endpointSource); ok {
			if ep, found, err := s.GetServiceBaseEndpoint(ctx, ServiceID); err == nil && found && ep != "" {
				return ep, true
			}
		}
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return *cfg.BaseEndpoint, true
	}
	return "", false
}

// fipsSource is what config.LoadOptions, config.EnvConfig
// (AWS_USE_FIPS_ENDPOINT) and config.SharedConfig (use_fips_endpoint)
// implement.
type fipsSource interface {
	GetUseFIPSEndpoint(ctx context.Context) (aws.FIPSEndpointState, bool, error)
}

// configuredFIPS is the first FIPS setting found among the config's
// sources, in their order, as the official modules resolve it.
func configuredFIPS(cfg aws.Config) aws.FIPSEndpointState {
	for _, src := range cfg.ConfigSources {
		if s, ok := src.(fipsSource); ok {
			v, found, err := s.GetUseFIPSEndpoint(context.Background())
			if err != nil {
				break
			}
			if found {
				return v
			}
		}
	}
	return aws.FIPSEndpointStateUnset
}

// Endpoint returns the URL requests go to, or why there is none (no
// region, FIPS with a configured endpoint, an invalid region).
func (c *Client) Endpoint() (string, error) { return c.endpoint.url, c.endpoint.err }

func newTransport() *http.Transport {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	tuneTransport(t)
	return t
}

func tuneTransport(t *http.Transport) {
	// No Accept-Encoding: gzip added by the transport, so that a request
	// is the official JavaScript SDK's, header for header (the SDK
	// conformance test in pcsim compares them); answers are small.
	t.DisableCompression = true
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = DefaultTimeout
}
