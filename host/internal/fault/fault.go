// Package fault names the kinds of failure moat's components report and
// carries one in a typed error. Domain packages (auth, limit, anthropic's
// request validation, pipeline, upstream, audit) return a *Error of a Kind,
// with a message safe to show the caller and the cause behind it for
// operators; the HTTP edge (host/internal/gateway) maps each Kind, in one
// table, to a status, an Anthropic error type, headers and an audit
// decision. No component below the edge knows a status code or an error
// type string.
//
// The package imports only the standard library, so any package may use it.
package fault

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind is a kind of failure. A Kind is itself an error, so
// errors.Is(err, fault.RateLimited) asks whether err is a rate limit.
type Kind uint8

// The kinds. Add a kind at the end of its group and give it a row in the
// edge's table (host/internal/gateway/errors.go): a test fails until it has
// one.
const (
	// Internal is a failure no component classified: a bug, or a state
	// that should not happen. The default for an unclassified error.
	Internal Kind = iota
	// InvalidRequest: the request is malformed or breaks a rule of this
	// gateway (a field, a header, a cap).
	InvalidRequest
	// Unauthenticated: no credential, or one that is not valid.
	Unauthenticated
	// Forbidden: the caller is known but may not do this (a model, a
	// route, an address).
	Forbidden
	// NotFound: no such route, model or path.
	NotFound
	// TooLarge: the request body is over the limit.
	TooLarge
	// RateLimited: a rate, token-per-minute, in-flight or lockout limit.
	RateLimited
	// BudgetExhausted: a spending budget has no room for the request
	// until it resets.
	BudgetExhausted
	// OverBudget: the request alone would cost more than a whole budget;
	// waiting will not help.
	OverBudget
	// StoreUnavailable: the limits' store cannot be reached (fail closed).
	StoreUnavailable
	// AuditUnavailable: the audit record cannot be written (fail closed).
	AuditUnavailable
	// InputRejected: an input plugin refused the request.
	InputRejected
	// OutputRejected: an output plugin (or moat's own output checks)
	// refused the answer.
	OutputRejected
	// PluginFailed: a plugin crashed, timed out or answered nonsense under
	// on_error = "reject".
	PluginFailed
	// UpstreamFailed: the upstream could not be reached or answered
	// something moat cannot use (a malformed body, a cut stream).
	UpstreamFailed
	// UpstreamTimeout: the upstream did not answer in time.
	UpstreamTimeout
	// UpstreamOverloaded: the upstream says it is overloaded.
	UpstreamOverloaded
	// UpstreamError: the upstream's own error in the API's shape (a 5xx or
	// a 429), relayed with its status and type (Error.Status, Error.Type).
	UpstreamError
	// UpstreamRefused: the upstream refused the request as the caller's
	// error (a 4xx other than 429), relayed with its status and type.
	UpstreamRefused
	// ClientGone: the client disconnected or cancelled.
	ClientGone

	numKinds // keep last
)

var kindNames = [numKinds]string{
	Internal:           "internal",
	InvalidRequest:     "invalid_request",
	Unauthenticated:    "unauthenticated",
	Forbidden:          "forbidden",
	NotFound:           "not_found",
	TooLarge:           "too_large",
	RateLimited:        "rate_limited",
	BudgetExhausted:    "budget_exhausted",
	OverBudget:         "over_budget",
	StoreUnavailable:   "store_unavailable",
	AuditUnavailable:   "audit_unavailable",
	InputRejected:      "input_rejected",
	OutputRejected:     "output_rejected",
	PluginFailed:       "plugin_failed",
	UpstreamFailed:     "upstream_failed",
	UpstreamTimeout:    "upstream_timeout",
	UpstreamOverloaded: "upstream_overloaded",
	UpstreamError:      "upstream_error",
	UpstreamRefused:    "upstream_refused",
	ClientGone:         "client_gone",
}

// Kinds lists every kind, in order.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// String returns the kind's name ("rate_limited", ...).
func (k Kind) String() string {
	if k < numKinds && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error implements error, so a Kind is a sentinel: errors.Is(err, k).
func (k Kind) Error() string { return k.String() }

// Error is a failure of a kind. Msg is what the caller may read; Err is
// the cause, for the log and the audit record only.
type Error struct {
	Kind Kind
	// Msg is safe to show the caller: it never holds a credential or an
	// internal detail.
	Msg string
	// Err is the cause behind Msg, or nil when Msg is the whole story.
	Err error
	// RetryAfter is how long the caller should wait before retrying; zero
	// when retrying will not help soon.
	RetryAfter time.Duration
	// Header holds extra response headers (X-RateLimit-*).
	Header http.Header
	// Plugin names the plugin that refused or failed (InputRejected,
	// OutputRejected, PluginFailed).
	Plugin string
	// By names the component that decided, for the audit record, when it
	// is not the one the kind implies: authentication's refusals are its
	// own whatever their kind (a malformed user id is an InvalidRequest
	// decided by "auth"). Empty: the kind's decider.
	By string
	// Status and Type are the upstream's status and error type, for
	// UpstreamError and UpstreamRefused (relayed as the upstream sent
	// them; the edge replaces a type the API does not define).
	Status int
	Type   string
	// Quoted is set when Msg quotes the upstream: the edge judges and
	// scrubs it before a client sees it.
	Quoted bool
}

// New returns an *Error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with message msg and cause err.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// Error implements error: the message, then the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the kind and the cause, so errors.Is matches either.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// From returns the *Error err is or wraps (the outermost), or an Internal
// one whose cause is err. From(nil) is nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Msg: "internal error", Err: err}
}

// KindOf returns the kind of err: Internal when it carries none.
func KindOf(err error) Kind {
	if e := From(err); e != nil {
		return e.Kind
	}
	return Internal
}
