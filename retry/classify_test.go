package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// apiErr wraps err the way the client returns it: an operation error around
// a response error with the HTTP status.
func apiErr(status int, err error) error {
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
	return &smithy.OperationError{ServiceID: "PartnerCentral Selling", OperationName: "UpdateEngagementContext",
		Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err}}}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want Class
	}{
		{"nil", live, nil, None},
		{"conflict", live, apiErr(409, &types.ConflictException{}), Conflict},
		{"throttling", live, apiErr(429, &types.ThrottlingException{}), Throttle},
		{"bare 429", live, apiErr(429, &smithy.GenericAPIError{Code: "UnknownError"}), Throttle},
		{"internal", live, apiErr(500, &types.InternalServerException{}), Transient},
		{"bare 502", live, apiErr(502, &smithy.GenericAPIError{Code: "UnknownError"}), Transient},
		{"validation", live, apiErr(400, &types.ValidationException{}), Permanent},
		{"not found", live, apiErr(404, &types.ResourceNotFoundException{}), Permanent},
		{"unknown 400", live, apiErr(400, &smithy.GenericAPIError{Code: "SerializationException"}), Systemic},
		{"proxy 404 page", live, apiErr(404, &smithy.GenericAPIError{Code: "UnknownError"}), Systemic},
		{"access denied", live, apiErr(403, &types.AccessDeniedException{}), Systemic},
		{"quota exceeded", live, apiErr(402, &types.ServiceQuotaExceededException{}), Systemic},
		{"bad signature", live, apiErr(403, &smithy.GenericAPIError{Code: "InvalidSignatureException"}), Systemic},
		{"expired token", live, apiErr(400, &smithy.GenericAPIError{Code: "ExpiredTokenException"}), Systemic},
		{"connection reset", live, &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: errors.New("connection reset")}}, Transient},
		{"client timeout", live, &smithy.OperationError{Err: &aws.RequestCanceledError{Err: context.DeadlineExceeded}}, Transient},
		{"caller stopping", stopped, &smithy.OperationError{Err: &aws.RequestCanceledError{Err: context.Canceled}}, Canceled},
		{"conflict while stopping", stopped, apiErr(409, &types.ConflictException{}), Conflict},
		{"unreadable 200", live, apiErr(200, &smithy.DeserializationError{Err: errors.New("eof")}), Transient},
		{"no region", live, &smithy.OperationError{Err: errors.New("no region configured")}, Systemic},
		{"wrapped", live, fmt.Errorf("update context eng-1: %w", apiErr(409, &types.ConflictException{})), Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("Classify(%v): got %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestReason(t *testing.T) {
	err := apiErr(400, &types.ValidationException{
		Message: aws.String("Invalid input"),
		Reason:  types.ValidationExceptionReasonRequestValidationFailed,
		ErrorList: []types.ValidationExceptionError{
			{FieldName: aws.String("Payload.CustomerProject.Customer.CountryCode"), Message: aws.String("not a country"), Code: types.ValidationExceptionErrorCodeInvalidEnumValue},
		},
	})
	want := "ValidationException: Invalid input (REQUEST_VALIDATION_FAILED); Payload.CustomerProject.Customer.CountryCode: not a country [INVALID_ENUM_VALUE]"
	if got := Reason(err); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := Reason(apiErr(404, &types.ResourceNotFoundException{Message: aws.String("no such engagement")})), "ResourceNotFoundException: no such engagement"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClassNames(t *testing.T) {
	for c, want := range map[Class]string{None: "none", Conflict: "conflict", Permanent: "permanent", Class(99): "unknown"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d): got %q, want %q", c, got, want)
		}
	}
}
