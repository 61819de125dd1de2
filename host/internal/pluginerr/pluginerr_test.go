package pluginerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

func TestCauses(t *testing.T) {
	detail := errors.New("guest looped")
	tests := []struct {
		name      string
		err       error
		want      pluginerr.Cause
		isDetail  bool
		countsBrk bool
	}{
		{"new", pluginerr.New(pluginerr.Timeout, "after %s", "200ms"), pluginerr.Timeout, false, true},
		{"wrap", pluginerr.Wrap(pluginerr.TrapUnreachable, detail), pluginerr.TrapUnreachable, true, true},
		{"wrapped again keeps the inner cause", fmt.Errorf("plugin %q: %w", "x", pluginerr.Wrap(pluginerr.Saturated, pluginerr.Wrap(pluginerr.Quarantined, detail))), pluginerr.Quarantined, true, false},
		{"canceled", pluginerr.Wrap(pluginerr.Canceled, context.Canceled), pluginerr.Canceled, false, false},
		{"no cause", detail, "", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pluginerr.CauseOf(tc.err); got != tc.want {
				t.Fatalf("CauseOf = %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				if !errors.Is(tc.err, tc.want) {
					t.Errorf("errors.Is(err, %q) = false", tc.want)
				}
				for _, other := range pluginerr.Causes {
					if other != tc.want && errors.Is(tc.err, other) {
						t.Errorf("errors.Is(err, %q) = true, want only %q", other, tc.want)
					}
				}
				if tc.want.Counts() != tc.countsBrk {
					t.Errorf("Counts() = %v", tc.want.Counts())
				}
			}
			if errors.Is(tc.err, detail) != tc.isDetail {
				t.Errorf("errors.Is(err, detail) = %v, want %v", !tc.isDetail, tc.isDetail)
			}
		})
	}
	if pluginerr.Wrap(pluginerr.Timeout, nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
	seen := map[pluginerr.Cause]bool{}
	for _, c := range pluginerr.Causes {
		if seen[c] || c == "" {
			t.Errorf("cause %q repeated or empty", c)
		}
		seen[c] = true
	}
}

func ExampleCauseOf() {
	err := fmt.Errorf("plugin %q, input: %w", "my-filter", pluginerr.New(pluginerr.Timeout, "stopped after 200ms"))
	fmt.Println(pluginerr.CauseOf(err), errors.Is(err, pluginerr.Timeout))
	// Output: timeout true
}
