package partnercentral

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// errorBody is the awsJson1_0 error document. The service may spell the
// message either way.
type errorBody struct {
	Type       string                           `json:"__type"`
	Code       string                           `json:"code"`
	Message    *string                          `json:"Message"`
	MessageLow *string                          `json:"message"`
	Reason     string                           `json:"Reason"`
	ErrorList  []types.ValidationExceptionError `json:"ErrorList"`
}

// decodeError turns a non-2xx answer into the modeled error type, or a
// *smithy.GenericAPIError that keeps an unknown code.
func decodeError(resp *http.Response, payload []byte) error {
	var body errorBody
	// A body that is not JSON (a proxy's HTML page, say) still leaves the
	// header and the status to go by.
	_ = json.Unmarshal(payload, &body)
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
	}
	if code == "" {
		code = body.Code
	}
	code = sanitizeErrorCode(code)
	msg := body.Message
	if msg == nil {
		msg = body.MessageLow
	}
	switch code {
	case "AccessDeniedException":
		return &types.AccessDeniedException{Message: msg, Reason: types.AccessDeniedExceptionErrorCode(body.Reason)}
	case "ConflictException":
		return &types.ConflictException{Message: msg}
	case "InternalServerException":
		return &types.InternalServerException{Message: msg}
	case "ResourceNotFoundException":
		return &types.ResourceNotFoundException{Message: msg}
	case "ServiceQuotaExceededException":
		return &types.ServiceQuotaExceededException{Message: msg}
	case "ThrottlingException":
		return &types.ThrottlingException{Message: msg}
	case "ValidationException":
		return &types.ValidationException{Message: msg, Reason: types.ValidationExceptionReason(body.Reason), ErrorList: body.ErrorList}
	}
	if code == "" {
		// The HTTP status, kept in the wrapping ResponseError, is all
		// there is to go by (a load balancer's bare 502, say).
		code = "UnknownError"
	}
	m := http.StatusText(resp.StatusCode)
	if msg != nil {
		m = *msg
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: m, Fault: fault}
}

// sanitizeErrorCode strips a "namespace#" prefix and a ":suffix" (the
// X-Amzn-ErrorType header may carry a documentation URL after a colon).
func sanitizeErrorCode(code string) string {
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return strings.TrimSpace(code)
}
