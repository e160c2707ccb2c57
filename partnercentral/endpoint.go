package partnercentral

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// EndpointResolverOptions are the endpoint settings of Options besides
// Region and BaseEndpoint: the part of the official module's options of
// the same name that this service's rules read.
type EndpointResolverOptions struct {
	// UseFIPSEndpoint sends requests to the FIPS endpoint when enabled.
	// NewFromConfig sets it from AWS_USE_FIPS_ENDPOINT or the shared
	// config's use_fips_endpoint. A FIPS pseudo-region (fips-us-east-1,
	// us-east-1-fips) enables it too.
	UseFIPSEndpoint aws.FIPSEndpointState
}

// EndpointParameters are the inputs of the service's endpoint rules (the
// model's smithy.rules#endpointRuleSet), under the official module's names.
type EndpointParameters struct {
	// Region is the region to send to (AWS::Region); nil or "" is unset.
	Region *string
	// UseFIPS asks for the FIPS endpoint (AWS::UseFIPS); nil is false.
	UseFIPS *bool
	// Endpoint overrides the endpoint (SDK::Endpoint); nil or "" is unset.
	Endpoint *string
}

// The rules' own error messages, which the official SDKs report too.
const (
	errFIPSCustomEndpoint = "Invalid Configuration: FIPS and custom endpoint are not supported"
	errMissingRegion      = "Invalid Configuration: Missing Region"
)

// ResolveEndpoint returns the URL the service's endpoint rules give:
//
//   - with Endpoint set: Endpoint, or an error when UseFIPS is also set;
//   - else with Region set: https://partnercentral-selling.{Region}.{suffix},
//     or partnercentral-selling-fips with UseFIPS, where suffix is the
//     dual-stack DNS suffix of Region's partition (aws.partition);
//   - else an error.
//
// The service has dual-stack endpoints only, in every partition, and FIPS
// ones in every partition.
func ResolveEndpoint(p EndpointParameters) (string, error) {
	fips := p.UseFIPS != nil && *p.UseFIPS
	if p.Endpoint != nil && *p.Endpoint != "" {
		if fips {
			return "", fmt.Errorf("partnercentral: %s (the endpoint is %s; unset AWS_USE_FIPS_ENDPOINT or use_fips_endpoint, or the endpoint)", errFIPSCustomEndpoint, *p.Endpoint)
		}
		return *p.Endpoint, nil
	}
	if p.Region == nil || *p.Region == "" {
		return "", fmt.Errorf("partnercentral: %s (set AWS_REGION, e.g. us-east-1)", errMissingRegion)
	}
	region := *p.Region
	host := "partnercentral-selling"
	if fips {
		host += "-fips"
	}
	return "https://" + host + "." + region + "." + partitionOf(region).dualStackDNSSuffix, nil
}

// partition is what the endpoint rules read of an AWS partition, from the
// partitions.json that the official SDKs share (aws-sdk-go-v2's
// internal/endpoints/awsrulesfn, @aws-sdk/util-endpoints).
type partition struct {
	id string
	// regions are the partition's listed regions that regionRegex does not
	// match (its global pseudo-region); a listed region wins over any
	// regex. No listed region of any partition overrides its outputs, so
	// the others need not be listed.
	regions            []string
	regionRegex        string
	dualStackDNSSuffix string
}

// partitions are the AWS partitions in the order of partitions.json, the
// order in which their regexes are tried.
func partitions() []partition {
	return []partition{
		{"aws", []string{"aws-global"}, `^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`, "api.aws"},
		{"aws-cn", []string{"aws-cn-global"}, `^cn\-\w+\-\d+$`, "api.amazonwebservices.com.cn"},
		{"aws-eusc", nil, `^eusc\-(de)\-\w+\-\d+$`, "api.amazonwebservices.eu"},
		{"aws-iso", []string{"aws-iso-global"}, `^us\-iso\-\w+\-\d+$`, "api.aws.ic.gov"},
		{"aws-iso-b", []string{"aws-iso-b-global"}, `^us\-isob\-\w+\-\d+$`, "api.aws.scloud"},
		{"aws-iso-e", []string{"aws-iso-e-global"}, `^eu\-isoe\-\w+\-\d+$`, "api.cloud-aws.adc-e.uk"},
		{"aws-iso-f", []string{"aws-iso-f-global"}, `^us\-isof\-\w+\-\d+$`, "api.aws.hci.ic.gov"},
		{"aws-us-gov", []string{"aws-us-gov-global"}, `^us\-gov\-\w+\-\d+$`, "api.aws"},
	}
}

// partitionOf is the rules' aws.partition: the partition that lists the
// region, else the first whose regex matches it, else aws.
func partitionOf(region string) partition {
	all := partitions()
	for _, p := range all {
		for _, r := range p.regions {
			if r == region {
				return p
			}
		}
	}
	for _, p := range all {
		if regexp.MustCompile(p.regionRegex).MatchString(region) {
			return p
		}
	}
	return all[0]
}

// resolvedEndpoint is where calls go and the region they are signed for.
type resolvedEndpoint struct {
	url, signingRegion string
	err                error
}

// resolveEndpoint binds the options to the rules' parameters as the
// official SDKs do: a FIPS pseudo-region is the region with FIPS on, and a
// region must be a host name label. Requests are signed for that region.
func (o *Options) resolveEndpoint() resolvedEndpoint {
	region := o.Region
	fips := o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled
	if r, ok := fipsPseudoRegion(region); ok {
		region, fips = r, true
	}
	if region != "" && !validHostLabel(region) {
		return resolvedEndpoint{err: fmt.Errorf("partnercentral: region %q is not a valid host name label", o.Region)}
	}
	params := EndpointParameters{UseFIPS: &fips, Endpoint: o.BaseEndpoint}
	if region != "" {
		params.Region = &region
	}
	url, err := ResolveEndpoint(params)
	return resolvedEndpoint{url: url, signingRegion: region, err: err}
}

// fipsPseudoRegion strips the "fips-" prefix or "-fips" suffix of a FIPS
// pseudo-region, the forms both the Go and the JavaScript SDK read as the
// region with FIPS on. (Each SDK has rarer forms of its own, which differ:
// Go's "-fips-" infix, JavaScript's "aws-fips" for us-east-1.)
func fipsPseudoRegion(region string) (string, bool) {
	if r, ok := strings.CutPrefix(region, "fips-"); ok {
		return r, true
	}
	if r, ok := strings.CutSuffix(region, "-fips"); ok {
		return r, true
	}
	return region, false
}

// validHostLabel reports whether s is one host name label: 1 to 63
// letters, digits and hyphens, neither first nor last a hyphen.
func validHostLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
