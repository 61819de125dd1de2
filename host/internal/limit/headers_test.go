package limit

import (
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/ulule/limiter/v3"
)

// TestTicketHeadersMatchSet checks that the ticket's headers, built with
// canonical keys, are what setting the X-RateLimit-* headers of the
// tightest limit one by one gives.
func TestTicketHeadersMatchSet(t *testing.T) {
	hit := func(limit, remaining, reset int64, reached bool) rateHit {
		return rateHit{c: limiter.Context{Limit: limit, Remaining: remaining, Reset: reset, Reached: reached}}
	}
	tests := []struct {
		name string
		hits []rateHit
	}{
		{"none", nil},
		{"one", []rateHit{hit(10, 9, 1700000000, false)}},
		{"tighter second", []rateHit{hit(10, 9, 1700000000, false), hit(5, 1, 1700000060, false)}},
		{"reached first", []rateHit{hit(10, 0, 1700000000, true), hit(5, 0, 1700000060, false)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := http.Header{}
			if len(tc.hits) > 0 {
				best := tightest(tc.hits).c
				want.Set("X-RateLimit-Limit", strconv.FormatInt(best.Limit, 10))
				want.Set("X-RateLimit-Remaining", strconv.FormatInt(best.Remaining, 10))
				want.Set("X-RateLimit-Reset", strconv.FormatInt(best.Reset, 10))
			}
			got := ticketHeaders(tc.hits)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ticketHeaders = %v, want %v", got, want)
			}
			tk := &Ticket{headers: got}
			dst := http.Header{"Other": {"x"}}
			tk.CopyHeaders(dst)
			for k, vs := range want {
				if !reflect.DeepEqual(dst[k], vs) {
					t.Errorf("CopyHeaders: %s = %v, want %v", k, dst[k], vs)
				}
			}
			if dst.Get("Other") != "x" || len(dst) != len(want)+1 {
				t.Errorf("CopyHeaders touched other headers: %v", dst)
			}
		})
	}
}
