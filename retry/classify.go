// Package retry decides what happens after a Partner Central call fails:
// it classifies errors (Classify), paces retries with jittered exponential
// backoff (Policy), keeps the shared call rate under the account's quota
// (Limiter), never lets the rolling daily write budget be overrun (Budget),
// and stops the worker from taking jobs while the service refuses every
// call (Circuit).
//
// It says what class an error is; what that class means for a job (retry,
// re-read, send back, dead-letter, hold) is decided in one place, the
// updater's fate.go. It does not own the jobs themselves (package updater)
// nor the queue (package queue).
package retry

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// Class is what an error means for the job that met it.
type Class int

// Error classes, from most to least hopeful.
const (
	// None: no error.
	None Class = iota
	// Conflict: the engagement changed since the timestamp was read;
	// re-read it and try again.
	Conflict
	// Throttle: over the rate quota; slow down and try again later.
	Throttle
	// Transient: the service or the network failed this once; try again.
	Transient
	// Canceled: the worker itself is shutting down; the job is not at fault
	// and goes back to the queue untouched.
	Canceled
	// Systemic: nothing will work until someone fixes the account, the
	// credentials or the quota; keep the job, stop taking new ones.
	Systemic
	// Permanent: this job can never be applied as it is; dead-letter it
	// with the reason.
	Permanent
)

var classNames = [...]string{"none", "conflict", "throttle", "transient", "canceled", "systemic", "permanent"}

// String returns the class's name as used in metrics labels and DLQ
// attributes.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// Classify returns the class of an error from a Partner Central call. ctx
// is the caller's context: a call cut short because the caller is stopping
// is Canceled, one cut short by the client's own timeout is Transient.
func Classify(ctx context.Context, err error) Class {
	if err == nil {
		return None
	}
	var (
		conflict   *types.ConflictException
		throttle   *types.ThrottlingException
		internal   *types.InternalServerException
		validation *types.ValidationException
		notFound   *types.ResourceNotFoundException
		denied     *types.AccessDeniedException
		quota      *types.ServiceQuotaExceededException
	)
	switch {
	case errors.As(err, &conflict):
		return Conflict
	case errors.As(err, &throttle):
		return Throttle
	case errors.As(err, &internal):
		return Transient
	case errors.As(err, &validation), errors.As(err, &notFound):
		return Permanent
	case errors.As(err, &denied), errors.As(err, &quota):
		return Systemic
	}
	if ctx != nil && ctx.Err() != nil {
		return Canceled
	}
	var canceled *aws.RequestCanceledError
	if errors.As(err, &canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's context is alive, so the client's per-call timeout
		// fired: a slow service, worth another try.
		return Transient
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return Transient
	}
	var api smithy.APIError
	if errors.As(err, &api) && isCredentialError(api.ErrorCode()) {
		return Systemic
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		return classifyStatus(resp.HTTPStatusCode(), err)
	}
	var deser *smithy.DeserializationError
	if errors.As(err, &deser) {
		return Transient
	}
	// Anything else happened before a request could be sent: no region,
	// no credentials, a bad endpoint. Every job would meet it.
	return Systemic
}

// isCredentialError tells the AWS-wide errors of a request's signature or
// credentials. Some come with status 400, but none is the job's fault:
// dead-lettering on them would empty the queue into the DLQ the day a
// credential expires.
func isCredentialError(code string) bool {
	switch code {
	case "ExpiredToken", "ExpiredTokenException", "RequestExpired",
		"IncompleteSignature", "IncompleteSignatureException",
		"InvalidSignatureException", "SignatureDoesNotMatch",
		"InvalidClientTokenId", "UnrecognizedClientException",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException",
		"AccessDenied", "UnauthorizedOperation", "OptInRequired":
		return true
	}
	return false
}

// classifyStatus classifies an unmodeled error by its HTTP status.
func classifyStatus(status int, err error) Class {
	var deser *smithy.DeserializationError
	switch {
	case status == http.StatusTooManyRequests:
		return Throttle
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Bad signature, unknown or expired credentials: not the job's fault.
		return Systemic
	case status == http.StatusPaymentRequired:
		return Systemic
	case status >= 500, status == http.StatusRequestTimeout:
		return Transient
	case errors.As(err, &deser):
		// A 2xx whose body could not be read; the write may have been
		// applied, which the conflict path will find out.
		return Transient
	case status >= 400:
		// Not an error the API models: a proxy's 404 page, a wrong
		// endpoint, a gateway's 413. Every job would meet it, so it is no
		// job's fault; dead-lettering would empty the queue into the DLQ.
		return Systemic
	}
	return Transient
}

// Reason returns the text to attach to a job that failed permanently: the
// API's message with every field of a ValidationException's ErrorList.
func Reason(err error) string {
	var validation *types.ValidationException
	if errors.As(err, &validation) {
		s := validation.ErrorCode() + ": " + validation.ErrorMessage()
		if validation.Reason != "" {
			s += " (" + string(validation.Reason) + ")"
		}
		for _, f := range validation.ErrorList {
			s += "; " + aws.ToString(f.FieldName) + ": " + aws.ToString(f.Message)
			if f.Code != "" {
				s += " [" + string(f.Code) + "]"
			}
		}
		return s
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	return err.Error()
}
