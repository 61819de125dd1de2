// Package pluginerr holds the closed set of reasons a plugin call can fail
// (its cause) and the typed error that carries one. The sandbox
// (host/internal/wasm) and the chain runner (host/internal/pipeline) return
// these; logs, the audit record, metrics and the console read the cause,
// while the client only ever sees a generic message.
package pluginerr

import (
	"errors"
	"fmt"
)

// Cause names why a plugin call failed. The set is closed: every plugin
// error carries exactly one of the constants below. A Cause is itself an
// error, so errors.Is(err, pluginerr.Timeout) tests for it.
type Cause string

// The causes.
const (
	// Timeout: the guest ran past timeout_ms and was stopped.
	Timeout Cause = "timeout"
	// TrapUnreachable: the guest executed unreachable, which is how a Go
	// panic, an AssemblyScript abort or a failed assertion ends a call.
	TrapUnreachable Cause = "trap_unreachable"
	// TrapStackOverflow: the guest's call depth passed the bound.
	TrapStackOverflow Cause = "trap_stack_overflow"
	// TrapOutOfBounds: the guest accessed memory outside its linear memory.
	TrapOutOfBounds Cause = "trap_out_of_bounds"
	// TrapMemoryLimit: the guest (or a new instance) needed memory past
	// memory_mb or past the global cap on wasm memory.
	TrapMemoryLimit Cause = "trap_memory_limit"
	// TrapProcExit: the guest called WASI proc_exit.
	TrapProcExit Cause = "trap_proc_exit"
	// TrapOther: any other trap (integer divide by zero, a bad indirect
	// call, a host function refusing its arguments).
	TrapOther Cause = "trap_other"
	// BadVerdictJSON: the verdict was not valid JSON or missed a field its
	// action needs.
	BadVerdictJSON Cause = "bad_verdict_json"
	// UnknownAction: the verdict named an action other than allow, modify
	// or reject.
	UnknownAction Cause = "unknown_action"
	// ResultTooLarge: the verdict was over max_output_bytes.
	ResultTooLarge Cause = "result_too_large"
	// BadResult: the hook's result pointed outside the guest's memory or
	// moat_alloc returned no buffer.
	BadResult Cause = "bad_result"
	// Saturated: no slot was free within queue_timeout_ms (the plugin's
	// max_concurrency, or the global cap on sandboxed calls).
	Saturated Cause = "saturated"
	// Quarantined: the plugin's circuit breaker is open.
	Quarantined Cause = "quarantined"
	// Canceled: the caller went away (the client disconnected) or the
	// plugin was closed by a reload; not the plugin's fault.
	Canceled Cause = "canceled"
)

// Causes lists every cause, in a stable order (for metrics and docs).
var Causes = []Cause{
	Timeout, TrapUnreachable, TrapStackOverflow, TrapOutOfBounds, TrapMemoryLimit, TrapProcExit, TrapOther,
	BadVerdictJSON, UnknownAction, ResultTooLarge, BadResult, Saturated, Quarantined, Canceled,
}

// CauseNames returns the names of Causes.
func CauseNames() []string {
	out := make([]string, len(Causes))
	for i, c := range Causes {
		out[i] = string(c)
	}
	return out
}

// Error implements error.
func (c Cause) Error() string { return string(c) }

// String returns the cause's name ("timeout", "trap_stack_overflow", ...).
func (c Cause) String() string { return string(c) }

// Counts reports whether the failure counts against the plugin's circuit
// breaker: the plugin's own faults do; saturation, quarantine and a caller
// going away do not.
func (c Cause) Counts() bool {
	switch c {
	case Saturated, Quarantined, Canceled:
		return false
	}
	return true
}

// Error is a plugin failure with its cause. Err holds the detail for
// operators (never shown to clients).
type Error struct {
	Cause Cause
	Err   error
}

// New returns an *Error with a formatted detail.
func New(c Cause, format string, args ...any) error {
	return &Error{Cause: c, Err: fmt.Errorf(format, args...)}
}

// Wrap returns err with cause c, or err itself when it already carries a
// cause (the innermost classification wins). A nil err stays nil.
func Wrap(c Cause, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Cause: c, Err: err}
}

// Error implements error: the detail, which names the cause's symptom.
func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Cause)
	}
	return e.Err.Error()
}

// Unwrap returns the cause and the detail, so errors.Is matches either.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Cause}
	}
	return []error{e.Cause, e.Err}
}

// CauseOf returns the cause err carries, or "" when it carries none.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return ""
}
