package partnercentral

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// errorBody is the awsJson1_0 error document. The service may spell the
// message either way; code may be a string or a number.
type errorBody struct {
	Type       string                           `json:"__type"`
	Code       any                              `json:"code"`
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
	// header and the status to go by. A member of the wrong type is
	// skipped, the others kept.
	_ = json.Unmarshal(payload, &body)
	code := errorCode(resp.Header, body)
	msg := body.MessageLow
	if msg == nil {
		msg = body.Message
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

// errorCode is the error's name, found where the official JavaScript SDK
// looks for an awsJson1_0 error, first found wins: the body's __type, the
// body's code, then the X-Amzn-ErrorType header. (aws-sdk-go-v2 reads the
// header first; the service sends the same name in both, so the order
// matters only behind something that rewrites one of them.) An empty value
// counts as absent.
func errorCode(h http.Header, body errorBody) string {
	for _, c := range []string{body.Type, codeString(body.Code), h.Get("X-Amzn-ErrorType")} {
		if c = sanitizeErrorCode(c); c != "" {
			return c
		}
	}
	return ""
}

func codeString(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64)
	}
	return ""
}

// sanitizeErrorCode cuts a name as the JavaScript SDK does: at the first
// comma, at the first colon (the header may carry a documentation URL after
// one), then to what follows a "namespace#" prefix.
func sanitizeErrorCode(code string) string {
	code, _, _ = strings.Cut(code, ",")
	code, _, _ = strings.Cut(code, ":")
	if _, name, ok := strings.Cut(code, "#"); ok {
		code, _, _ = strings.Cut(name, "#")
	}
	return strings.TrimSpace(code)
}
