// Package anthropic is the Anthropic Messages API wire format as moat needs
// it: error shapes, request decoding and validation that keeps every field it
// does not know, usage accounting and the SSE event stream.
package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// Error types of the Anthropic API. They are declared here, with the wire
// format, and nowhere else in moat.
const (
	TypeInvalidRequest  = "invalid_request_error"
	TypeAuthentication  = "authentication_error"
	TypeBilling         = "billing_error"
	TypePermission      = "permission_error"
	TypeNotFound        = "not_found_error"
	TypeRequestTooLarge = "request_too_large"
	TypeRateLimit       = "rate_limit_error"
	TypeAPI             = "api_error"
	TypeTimeout         = "timeout_error"
	TypeOverloaded      = "overloaded_error"
)

// KnownType reports whether t is one of the API's error types.
func KnownType(t string) bool {
	switch t {
	case TypeInvalidRequest, TypeAuthentication, TypeBilling, TypePermission, TypeNotFound,
		TypeRequestTooLarge, TypeRateLimit, TypeAPI, TypeTimeout, TypeOverloaded:
		return true
	}
	return false
}

// InvalidRequest is the error of a request that breaks the API's rules: a
// fault.InvalidRequest with a formatted message safe to show the caller.
func InvalidRequest(format string, args ...any) *fault.Error {
	return fault.New(fault.InvalidRequest, format, args...)
}

// ErrorBody is the JSON body of an API error.
type ErrorBody struct {
	Type      string      `json:"type"`
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// ErrorDetail is the inner object of an ErrorBody.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// EncodeError encodes an error of type typ as Anthropic's JSON error body;
// requestID is left out when empty (as in an SSE "error" event).
func EncodeError(typ, message, requestID string) []byte {
	b, err := json.Marshal(ErrorBody{Type: "error", Error: ErrorDetail{Type: typ, Message: message}, RequestID: requestID})
	if err != nil { // strings always encode
		panic(fmt.Sprintf("encoding an error body: %v", err))
	}
	return b
}

// ParseErrorBody reads an upstream error body; ok is false when it is not in
// Anthropic's shape.
func ParseErrorBody(b []byte) (ErrorDetail, bool) {
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Type != "error" || eb.Error.Type == "" {
		return ErrorDetail{}, false
	}
	return eb.Error, true
}

// TypeForStatus gives the error type the API uses for a status.
func TypeForStatus(status int) string {
	switch status {
	case 400:
		return TypeInvalidRequest
	case 401:
		return TypeAuthentication
	case 403:
		return TypePermission
	case 404:
		return TypeNotFound
	case 413:
		return TypeRequestTooLarge
	case 429:
		return TypeRateLimit
	case 529:
		return TypeOverloaded
	default:
		return TypeAPI
	}
}
