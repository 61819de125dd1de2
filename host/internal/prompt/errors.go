package prompt

// InputError is a problem with the data a client sent: the HTTP layer
// returns it as a 400 invalid_request_error naming Field.
type InputError struct {
	// Field names the request field: "input" or "variables.NAME".
	Field string
	// Msg says what is wrong, in lowercase, without the field name.
	Msg string
}

// Error returns "Field: Msg".
func (e *InputError) Error() string { return e.Field + ": " + e.Msg }
