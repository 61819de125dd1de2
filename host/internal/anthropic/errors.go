// Package anthropic is the Anthropic Messages API wire format as moat needs
// it: error shapes, request decoding and validation that keeps every field it
// does not know, usage accounting and the SSE event stream.
package anthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error types of the Anthropic API.
const (
	TypeInvalidRequest  = "invalid_request_error"
	TypeAuthentication  = "authentication_error"
	TypePermission      = "permission_error"
	TypeNotFound        = "not_found_error"
	TypeRequestTooLarge = "request_too_large"
	TypeRateLimit       = "rate_limit_error"
	TypeAPI             = "api_error"
	TypeOverloaded      = "overloaded_error"
)

// Error is an error the client sees, in Anthropic's shape, with its status.
type Error struct {
	Status  int
	Type    string
	Message string
	// Header holds extra response headers (retry-after, rate-limit headers).
	Header http.Header
	// Upstream is set when Message (and Type) came from the upstream: the
	// gateway judges and scrubs such a message before a client sees it.
	Upstream bool
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// Errorf builds an *Error.
func Errorf(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// InvalidRequest is a 400 invalid_request_error.
func InvalidRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, TypeInvalidRequest, format, args...)
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

// Body encodes the error as Anthropic's JSON error body.
func (e *Error) Body(requestID string) []byte {
	b, _ := json.Marshal(ErrorBody{Type: "error", Error: ErrorDetail{Type: e.Type, Message: e.Message}, RequestID: requestID})
	return b
}

// EventBody encodes the error as the data of an SSE "error" event.
func (e *Error) EventBody() []byte {
	b, _ := json.Marshal(ErrorBody{Type: "error", Error: ErrorDetail{Type: e.Type, Message: e.Message}})
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
