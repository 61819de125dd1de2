package fault

import (
	"errors"
	"fmt"
	"testing"
)

// TestKindsNamed: every kind has its own name (metrics, logs and the edge's
// table test print it).
func TestKindsNamed(t *testing.T) {
	seen := map[string]Kind{}
	for _, k := range Kinds() {
		name := k.String()
		if name == "" || name == fmt.Sprintf("kind(%d)", int(k)) {
			t.Errorf("kind %d has no name", int(k))
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("kinds %d and %d share the name %q", int(prev), int(k), name)
		}
		seen[name] = k
	}
}

// TestIsAndAs: a kind is a sentinel for errors.Is through any wrapping;
// the cause stays reachable; From finds the outermost fault or calls the
// error internal.
func TestIsAndAs(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	f := Wrap(StoreUnavailable, cause, "rate-limit store unavailable")
	wrapped := fmt.Errorf("admitting: %w", f)
	cases := []struct {
		name    string
		err     error
		kind    Kind
		notKind Kind
		msg     string
	}{
		{"bare", New(RateLimited, "slow down"), RateLimited, BudgetExhausted, "slow down"},
		{"wrapped", wrapped, StoreUnavailable, RateLimited, "rate-limit store unavailable"},
		{"unclassified", errors.New("boom"), Internal, InvalidRequest, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.kind {
				t.Errorf("KindOf = %s, want %s", got, tc.kind)
			}
			// An unclassified error is Internal to From and KindOf, but
			// it does not wrap the sentinel.
			if classified := tc.name != "unclassified"; classified != errors.Is(tc.err, tc.kind) {
				t.Errorf("errors.Is(err, %s) = %v, want %v", tc.kind, !classified, classified)
			}
			if errors.Is(tc.err, tc.notKind) {
				t.Errorf("errors.Is(err, %s) = true", tc.notKind)
			}
			if got := From(tc.err).Msg; got != tc.msg {
				t.Errorf("From(err).Msg = %q, want %q", got, tc.msg)
			}
		})
	}
	if !errors.Is(wrapped, cause) {
		t.Error("the cause is not reachable with errors.Is")
	}
	if got := wrapped.Error(); got != "admitting: rate-limit store unavailable: dial tcp: connection refused" {
		t.Errorf("Error() = %q", got)
	}
	if From(nil) != nil {
		t.Error("From(nil) != nil")
	}
	// The outermost fault wins: a refusal that wraps another fault's error
	// is answered as the refusal.
	outer := &Error{Kind: PluginFailed, Msg: "plugin failed", Err: New(UpstreamTimeout, "inner")}
	if got := From(fmt.Errorf("x: %w", outer)).Kind; got != PluginFailed {
		t.Errorf("From picked %s, want the outermost %s", got, PluginFailed)
	}
}
