package limit

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Error types, as in Anthropic's error body ({"type":"error","error":{"type":...}}).
const (
	TypeRateLimit      = "rate_limit_error"
	TypeAPI            = "api_error"
	TypeInvalidRequest = "invalid_request_error"
)

// MsgStoreUnavailable is the message of the error returned when the store
// cannot be reached and fail_open is off.
const MsgStoreUnavailable = "rate-limit store unavailable"

// Error is a refusal the HTTP layer turns into a response: Status (429, 503
// or 400) and Type (TypeRateLimit, TypeAPI or TypeInvalidRequest) go into
// the status line and the Anthropic-shaped error body, Message is
// safe to show the caller, Headers (X-RateLimit-*, retry-after) go on the
// response. RetryAfter is zero when retrying will not help soon.
type Error struct {
	Status     int
	Type       string
	Message    string
	RetryAfter time.Duration
	Headers    map[string]string

	cause error
}

// Error implements error.
func (e *Error) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

// Unwrap returns the underlying store error, if any.
func (e *Error) Unwrap() error { return e.cause }

// ErrStoreUnavailable matches (errors.Is) the error returned when the store
// cannot be reached and fail_open is off.
var ErrStoreUnavailable = errors.New(MsgStoreUnavailable)

// Is makes errors.Is(err, ErrStoreUnavailable) work for store failures.
func (e *Error) Is(target error) bool {
	return target == ErrStoreUnavailable && e.Status == 503 && e.Message == MsgStoreUnavailable
}

func storeUnavailable(step string, err error) *Error {
	return &Error{
		Status:     503,
		Type:       TypeAPI,
		Message:    MsgStoreUnavailable,
		RetryAfter: time.Second,
		Headers:    map[string]string{"retry-after": "1"},
		cause:      fmt.Errorf("%s: %w", step, err),
	}
}

// refusal builds a 429 with retry-after set to the time until reset.
func refusal(msg string, retry time.Duration, headers map[string]string) *Error {
	if headers == nil {
		headers = map[string]string{}
	}
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	headers["retry-after"] = strconv.FormatInt(secs, 10)
	return &Error{Status: 429, Type: TypeRateLimit, Message: msg, RetryAfter: time.Duration(secs) * time.Second, Headers: headers}
}
