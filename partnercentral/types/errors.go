package types

import (
	"fmt"

	"github.com/aws/smithy-go"
)

// Each modeled error implements smithy.APIError, as in the official module:
// ErrorCode is the error's name unless the service sent another one
// (ErrorCodeOverride), ErrorFault tells client from server faults.

func errorString(code, msg *string, def string) string {
	c := def
	if code != nil {
		c = *code
	}
	m := ""
	if msg != nil {
		m = *msg
	}
	return fmt.Sprintf("%s: %s", c, m)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func codeOr(override *string, def string) string {
	if override != nil {
		return *override
	}
	return def
}

// AccessDeniedException: the caller may not perform the operation
// (permissions, or the partner account's state). HTTP 403.
type AccessDeniedException struct {
	Message           *string
	ErrorCodeOverride *string
	Reason            AccessDeniedExceptionErrorCode
}

func (e *AccessDeniedException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "AccessDeniedException")
}
func (e *AccessDeniedException) ErrorMessage() string { return deref(e.Message) }
func (e *AccessDeniedException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "AccessDeniedException")
}
func (e *AccessDeniedException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// ConflictException: the request's EngagementLastModifiedAt is not the
// engagement's current ModifiedAt. HTTP 409.
type ConflictException struct {
	Message           *string
	ErrorCodeOverride *string
}

func (e *ConflictException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "ConflictException")
}
func (e *ConflictException) ErrorMessage() string { return deref(e.Message) }
func (e *ConflictException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "ConflictException")
}
func (e *ConflictException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// InternalServerException: a transient failure inside the service. HTTP 500.
type InternalServerException struct {
	Message           *string
	ErrorCodeOverride *string
}

func (e *InternalServerException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "InternalServerException")
}
func (e *InternalServerException) ErrorMessage() string { return deref(e.Message) }
func (e *InternalServerException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "InternalServerException")
}
func (e *InternalServerException) ErrorFault() smithy.ErrorFault { return smithy.FaultServer }

// ResourceNotFoundException: the engagement or context does not exist.
// HTTP 404.
type ResourceNotFoundException struct {
	Message           *string
	ErrorCodeOverride *string
}

func (e *ResourceNotFoundException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "ResourceNotFoundException")
}
func (e *ResourceNotFoundException) ErrorMessage() string { return deref(e.Message) }
func (e *ResourceNotFoundException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "ResourceNotFoundException")
}
func (e *ResourceNotFoundException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// ServiceQuotaExceededException: an account quota is spent. HTTP 402.
type ServiceQuotaExceededException struct {
	Message           *string
	ErrorCodeOverride *string
}

func (e *ServiceQuotaExceededException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "ServiceQuotaExceededException")
}
func (e *ServiceQuotaExceededException) ErrorMessage() string { return deref(e.Message) }
func (e *ServiceQuotaExceededException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "ServiceQuotaExceededException")
}
func (e *ServiceQuotaExceededException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// ThrottlingException: the request rate is over the quota. HTTP 429.
type ThrottlingException struct {
	Message           *string
	ErrorCodeOverride *string
}

func (e *ThrottlingException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "ThrottlingException")
}
func (e *ThrottlingException) ErrorMessage() string { return deref(e.Message) }
func (e *ThrottlingException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "ThrottlingException")
}
func (e *ThrottlingException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// ValidationException: the request breaks the model's or the business rules.
// HTTP 400. ErrorList names each field and what is wrong with it.
type ValidationException struct {
	Message           *string
	ErrorCodeOverride *string
	Reason            ValidationExceptionReason
	ErrorList         []ValidationExceptionError
}

func (e *ValidationException) Error() string {
	return errorString(e.ErrorCodeOverride, e.Message, "ValidationException")
}
func (e *ValidationException) ErrorMessage() string { return deref(e.Message) }
func (e *ValidationException) ErrorCode() string {
	return codeOr(e.ErrorCodeOverride, "ValidationException")
}
func (e *ValidationException) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// ValidationExceptionError is one field's violation in a ValidationException.
type ValidationExceptionError struct {
	FieldName *string                      `json:"FieldName,omitempty"`
	Message   *string                      `json:"Message,omitempty"`
	Code      ValidationExceptionErrorCode `json:"Code,omitempty"`
}
