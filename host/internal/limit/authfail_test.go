package limit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// TestAuthFailuresByAddressAndCredential: failures are counted under the
// address and under the presented credential; either reaching the rate
// locks out further failures that share it, and nothing else.
func TestAuthFailuresByAddressAndCredential(t *testing.T) {
	type probe struct {
		ip, cred string
		locked   bool
	}
	cases := []struct {
		name   string
		fail   func(i int) (ip, cred string) // the i-th of 5 failures
		probes []probe
	}{
		{"one address, many credentials", func(i int) (string, string) { return "203.0.113.1", fmt.Sprintf("c%d", i) }, []probe{
			{"203.0.113.1", "fresh", true},
			{"203.0.113.1", "", true},
			{"203.0.113.2", "fresh", false},
			{"203.0.113.2", "c0", false},
		}},
		{"one credential, many addresses", func(i int) (string, string) { return fmt.Sprintf("198.51.100.%d", i), "stolen" }, []probe{
			{"192.0.2.9", "stolen", true},
			{"192.0.2.9", "other", false},
			{"198.51.100.0", "other", false},
		}},
		{"no credential", func(int) (string, string) { return "203.0.113.7", "" }, []probe{
			{"203.0.113.7", "", true},
			{"203.0.113.7", "any", true},
			{"203.0.113.8", "", false},
		}},
	}
	for _, store := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				l := newLimiter(t, parseCfg(t, store, "[limits]\nauth_fail_rate = \"5-M\"\n"), Options{})
				ctx := context.Background()
				for i := range 5 {
					ip, cred := tc.fail(i)
					if err := l.AuthFailure(ctx, ip, cred); err != nil {
						t.Fatalf("failure %d (of the 5 allowed) refused: %v", i, err)
					}
				}
				ip, cred := tc.fail(5)
				if err := l.AuthFailure(ctx, ip, cred); err == nil {
					t.Fatal("the 6th failure passed")
				}
				for _, p := range tc.probes {
					err := l.AuthFailure(ctx, p.ip, p.cred)
					if !p.locked {
						if err != nil {
							t.Errorf("%s/%q locked out: %v", p.ip, p.cred, err)
						}
						continue
					}
					var e *fault.Error
					if !errors.As(err, &e) || e.Kind != fault.RateLimited || e.RetryAfter <= 0 {
						t.Errorf("%s/%q: %v, want a 429 with retry-after", p.ip, p.cred, err)
					}
				}
			})
		}
	}
}

// TestAuthFailuresRace: 300 failures racing from one address are counted
// exactly: the rate's worth of them pass, and the address is locked out
// afterwards.
func TestAuthFailuresRace(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			l := newLimiter(t, parseCfg(t, store, "[limits]\nauth_fail_rate = \"20-M\"\n"), Options{})
			ctx := context.Background()
			var reached atomic.Int64
			race(300, func(i int) {
				if l.AuthFailure(ctx, "203.0.113.50", fmt.Sprintf("k%d", i)) == nil {
					reached.Add(1)
				}
			})
			if got := reached.Load(); got != 20 {
				t.Fatalf("%d failures passed, want exactly 20 (the rate)", got)
			}
			if err := l.AuthFailure(ctx, "203.0.113.50", "new"); err == nil {
				t.Fatal("address not locked out after 300 failures")
			}
		})
	}
}
