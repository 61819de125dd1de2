package prompt

import "github.com/moat-gateway/moat/host/internal/fault"

// InputError is a problem with the data a client sent: a
// fault.InvalidRequest (through Unwrap) whose message names Field. Any
// other error of this package is moat's own (fault.Internal).
type InputError struct {
	// Field names the request field: "input" or "variables.NAME".
	Field string
	// Msg says what is wrong, in lowercase, without the field name.
	Msg string
}

// Error returns "Field: Msg".
func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns the error as a fault.InvalidRequest with Error's text.
func (e *InputError) Unwrap() error { return fault.New(fault.InvalidRequest, "%s", e.Error()) }
