package pcsim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// Errors of the Go API (AddEngagement, Touch), also mapped to admin API
// status codes.
var (
	ErrNotFound = errors.New("engagement not found")
	ErrExists   = errors.New("engagement already exists")
	ErrInvalid  = errors.New("invalid engagement")
)

// Error names on the wire, as the X-Amzn-ErrorType header and the body's
// __type carry them.
const (
	errConflict          = "ConflictException"
	errThrottling        = "ThrottlingException"
	errInternal          = "InternalServerException"
	errValidation        = "ValidationException"
	errNotFound          = "ResourceNotFoundException"
	errAccessDenied      = "AccessDeniedException"
	errQuotaExceeded     = "ServiceQuotaExceededException"
	errMissingToken      = "MissingAuthenticationTokenException"
	errInvalidSignature  = "InvalidSignatureException"
	errIncompleteSig     = "IncompleteSignatureException"
	errUnrecognized      = "UnrecognizedClientException"
	errUnknownOperation  = "UnknownOperationException"
	errSerialization     = "SerializationException"
	accessDeniedTemplate = "User is not authorized to perform: partnercentral:%s on resource: catalog/*"
)

// apiError is an error reply of the API.
type apiError struct {
	status  int
	name    string
	message string
	reason  string // ValidationException and AccessDeniedException only
	fields  []types.ValidationExceptionError
}

// wireError is an error's JSON body. ErrorList is a pointer so that a
// ValidationException always carries the key, even when empty, and other
// errors never do.
type wireError struct {
	Type      string                            `json:"__type"`
	Message   string                            `json:"Message"`
	Reason    string                            `json:"Reason,omitempty"`
	ErrorList *[]types.ValidationExceptionError `json:"ErrorList,omitempty"`
}

func (e *apiError) body() wireError {
	w := wireError{Type: e.name, Message: e.message, Reason: e.reason}
	if e.name == errValidation {
		list := e.fields
		if list == nil {
			list = []types.ValidationExceptionError{}
		}
		w.ErrorList = &list
	}
	return w
}

func newError(status int, name, format string, args ...any) *apiError {
	return &apiError{status: status, name: name, message: fmt.Sprintf(format, args...)}
}

func conflictError(id string) *apiError {
	return newError(http.StatusConflict, errConflict,
		"Engagement %s was modified after the EngagementLastModifiedAt given; read it again and retry with its ModifiedAt", id)
}

func throttlingError(what string) *apiError {
	return newError(http.StatusTooManyRequests, errThrottling, "Rate exceeded: %s", what)
}

func notFoundError(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, errNotFound, format, args...)
}

func serializationError(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, errSerialization, format, args...)
}

func authError(name, format string, args ...any) *apiError {
	return newError(http.StatusForbidden, name, format, args...)
}

// requestValidationError turns the schema's violations into the service's
// ValidationException. Rules never quote sensitive values (the schema sees
// to that), so the message is safe to log.
func requestValidationError(vs []schema.Violation) *apiError {
	e := &apiError{status: http.StatusBadRequest, name: errValidation,
		reason: string(types.ValidationExceptionReasonRequestValidationFailed)}
	msgs := make([]string, len(vs))
	for i, v := range vs {
		msgs[i] = v.String()
		e.fields = append(e.fields, fieldError(v.Field, v.Rule, v.Code))
	}
	noun := "errors"
	if len(vs) == 1 {
		noun = "error"
	}
	e.message = fmt.Sprintf("%d validation %s detected: %s", len(vs), noun, strings.Join(msgs, "; "))
	return e
}

func businessValidationError(field, rule string, code types.ValidationExceptionErrorCode) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		name:    errValidation,
		message: field + ": " + rule,
		reason:  string(types.ValidationExceptionReasonBusinessValidationFailed),
		fields:  []types.ValidationExceptionError{fieldError(field, rule, code)},
	}
}

func fieldError(field, msg string, code types.ValidationExceptionErrorCode) types.ValidationExceptionError {
	fe := types.ValidationExceptionError{Message: &msg, Code: code}
	if field != "" {
		fe.FieldName = &field
	}
	return fe
}
