package limit

import (
	"fmt"
	"net/http"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// MsgStoreUnavailable is the message of the error returned when the store
// cannot be reached and fail_open is off.
const MsgStoreUnavailable = "rate-limit store unavailable"

// A refusal is a *fault.Error of kind fault.RateLimited (a rate, the token
// window, the in-flight cap, the authentication lockout),
// fault.BudgetExhausted (a budget until it resets), fault.OverBudget (a call
// larger than a whole budget) or fault.StoreUnavailable (the store cannot
// be reached and fail_open is off; errors.Is(err, fault.StoreUnavailable)).
// Msg is safe to show the caller, Header holds X-RateLimit-*, RetryAfter is
// zero when retrying will not help soon.

func storeUnavailable(step string, err error) *fault.Error {
	return &fault.Error{
		Kind:       fault.StoreUnavailable,
		Msg:        MsgStoreUnavailable,
		Err:        fmt.Errorf("%s: %w", step, err),
		RetryAfter: time.Second,
	}
}

// refusal builds a refusal of kind k whose retry-after is the time until
// reset, in whole seconds (at least one).
func refusal(k fault.Kind, msg string, retry time.Duration, header http.Header) *fault.Error {
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &fault.Error{Kind: k, Msg: msg, RetryAfter: time.Duration(secs) * time.Second, Header: header}
}
