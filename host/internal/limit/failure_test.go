package limit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// TestRedisKilled: a private redis-server dies mid-run. By default every
// call fails closed with the 503 "rate-limit store unavailable"; with
// fail_open it admits. When the server is back, limits work again.
func TestRedisKilled(t *testing.T) {
	body := `[limits]
client_rate = "100-M"
user_tokens_per_minute = 100000
auth_fail_rate = "5-M"
%s
[[clients]]
id = "app"
max_in_flight = 10
[[budgets]]
scope = "global"
period = "day"
usd = 10
`
	cases := []struct {
		name     string
		failOpen bool
	}{{"fail closed", false}, {"fail open", true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, kill := ownRedis(t)
			cfg := parseCfgAt(t, "redis", addr, "", fmt.Sprintf(body, fmt.Sprintf("fail_open = %v", tc.failOpen)))
			var warned atomic.Int64
			l := newLimiter(t, cfg, Options{Logger: countLogger("limit: store unavailable, admitting (fail_open)", &warned)})
			ctx := context.Background()
			id := Identity{Client: "app", User: "bob"}
			tk, err := l.Admit(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Reserve(ctx, id, sonnet, 100, 100)
			if err != nil {
				t.Fatal(err)
			}
			kill() // redis dies with a slot and a reservation held

			start := time.Now()
			tk2, admitErr := l.Admit(ctx, id)
			r2, resErr := l.Reserve(ctx, id, sonnet, 100, 100)
			authErr := l.AuthFailure(ctx, "192.0.2.9", "")
			_, usageErr := l.Usage(ctx)
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("calls against a dead store took %v", d)
			}
			if usageErr == nil || !errors.Is(usageErr, fault.StoreUnavailable) {
				t.Fatalf("usage report: %v", usageErr)
			}
			if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 5}); err == nil {
				t.Fatal("settle against a dead store reported success")
			}
			if tc.failOpen {
				for _, err := range []error{admitErr, resErr, authErr} {
					if err != nil {
						t.Fatalf("fail_open refused: %v", err)
					}
				}
				if warned.Load() < 3 {
					t.Fatalf("fail-open admissions logged %d times, want >= 3", warned.Load())
				}
				tk2.Done()
				r2.Release(ctx)
				tk.Done()
				return
			}
			for name, err := range map[string]error{"admit": admitErr, "reserve": resErr, "auth": authErr} {
				e := asError(t, err, fault.StoreUnavailable)
				if e.Msg != "rate-limit store unavailable" || !errors.Is(err, fault.StoreUnavailable) || e.RetryAfter <= 0 {
					t.Fatalf("%s: %+v", name, e)
				}
				if !strings.Contains(err.Error(), "connect") && !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "EOF") {
					t.Logf("%s cause: %v", name, err)
				}
			}
			tk.Done() // logs, does not panic
		})
	}
}

// TestReservationLeaseExpires: a reservation of an instance that died is
// returned to the budget after the lease; a live one is kept.
func TestReservationLeaseExpires(t *testing.T) {
	cfg := parseCfg(t, "redis", "[[budgets]]\nscope = \"global\"\nperiod = \"month\"\ntokens = 300\n")
	prefix := testPrefix(t)
	lease := 600 * time.Millisecond
	dead := newLimiter(t, cfg, Options{KeyPrefix: prefix, Lease: lease})
	live := newLimiter(t, cfg, Options{KeyPrefix: prefix, Lease: lease})
	ctx := context.Background()
	id := Identity{Client: "app"}
	if _, err := dead.Reserve(ctx, id, sonnet, 100, 50); err != nil {
		t.Fatal(err)
	}
	kept, err := live.Reserve(ctx, id, sonnet, 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // crash: no Settle, no Release, no refresh
	if _, err := live.Reserve(ctx, id, sonnet, 100, 50); err == nil {
		t.Fatal("reserved past the budget")
	}
	time.Sleep(2 * lease)
	r, err := live.Reserve(ctx, id, sonnet, 100, 50)
	if err != nil {
		t.Fatalf("dead instance's reservation was not returned: %v", err)
	}
	if _, err := live.Reserve(ctx, id, sonnet, 100, 50); err == nil {
		t.Fatal("live reservation was not refreshed")
	}
	if _, err := kept.Settle(ctx, sonnet, Usage{InputTokens: 100, OutputTokens: 50}); err != nil {
		t.Fatal(err)
	}
	r.Release(ctx)
	if b := budgetFor(t, live, "global", "*", "month"); b.TokensSpent != 150 || b.TokensReserved != 0 {
		t.Fatalf("budget %+v", b)
	}
}
