package limit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// TestExactAdmission: 200 requests racing against a limit of N admit
// exactly N, for the client rate and the per-user rate, in both stores.
func TestExactAdmission(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		id    Identity
		limit int
	}{
		{"client rate 1", "[[clients]]\nid = \"app\"\nrate = \"1-M\"\n", Identity{Client: "app"}, 1},
		{"client rate 37", "[limits]\nclient_rate = \"37-H\"\n[[clients]]\nid = \"app\"\n", Identity{Client: "app"}, 37},
		{"user rate 50", "[[clients]]\nid = \"app\"\nuser_rate = \"50-M\"\n", Identity{Client: "app", User: "bob"}, 50},
		{"client rate 199", "[limits]\nclient_rate = \"199-M\"\n[[clients]]\nid = \"app\"\n", Identity{Client: "app"}, 199},
	}
	for _, store := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				l := newLimiter(t, parseCfg(t, store, tc.body), Options{})
				var admitted, refused atomic.Int64
				var badErr atomic.Value
				race(200, func(int) {
					tk, err := l.Admit(context.Background(), tc.id)
					if err == nil {
						admitted.Add(1)
						tk.Done()
						return
					}
					var e *fault.Error
					if !errors.As(err, &e) || e.Kind != fault.RateLimited || e.RetryAfter <= 0 || e.Header.Get("X-RateLimit-Remaining") != "0" {
						badErr.Store(fmt.Sprintf("%v %+v", err, e))
					}
					refused.Add(1)
				})
				if v := badErr.Load(); v != nil {
					t.Fatalf("unexpected refusal shape: %v", v)
				}
				if admitted.Load() != int64(tc.limit) || refused.Load() != int64(200-tc.limit) {
					t.Fatalf("admitted %d refused %d, want %d and %d", admitted.Load(), refused.Load(), tc.limit, 200-tc.limit)
				}
			})
		}
	}
}

func TestRateHeaders(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := parseCfg(t, store, "[limits]\nclient_rate = \"5-M\"\nuser_rate = \"3-M\"\n[[clients]]\nid = \"app\"\n")
			l := newLimiter(t, cfg, Options{})
			ctx := context.Background()
			for i := 1; i <= 3; i++ {
				tk, err := l.Admit(ctx, Identity{Client: "app", User: "u1"})
				if err != nil {
					t.Fatalf("admit %d: %v", i, err)
				}
				h := tk.Headers()
				// The user limit (3) is tighter than the client's (5).
				if h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != strconv.Itoa(3-i) {
					t.Fatalf("admit %d headers %v", i, h)
				}
				reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
				if err != nil || reset < time.Now().Unix() || reset > time.Now().Add(61*time.Second).Unix() {
					t.Fatalf("reset %q not within the minute", h.Get("X-RateLimit-Reset"))
				}
				tk.Done()
				tk.Done() // idempotent
			}
			_, err := l.Admit(ctx, Identity{Client: "app", User: "u1"})
			e := asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, `user "u1" allows 3 requests per minute`) || e.RetryAfter <= 0 || e.RetryAfter > 61*time.Second {
				t.Fatalf("refusal %q retry %v", e.Msg, e.RetryAfter)
			}
			// Another user still has room; the client's rate counted all 4.
			tk, err := l.Admit(ctx, Identity{Client: "app", User: "u2"})
			if err != nil {
				t.Fatal(err)
			}
			if got := tk.Headers().Get("X-RateLimit-Remaining"); got != "0" {
				t.Fatalf("client remaining after 5 calls = %s, want 0", got)
			}
			_, err = l.Admit(ctx, Identity{Client: "app", User: "u3"})
			e = asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, `client "app"`) {
				t.Fatalf("message %q should name the client", e.Msg)
			}
		})
	}
}

// TestInFlightCap: with max_in_flight = 3 and 200 racing requests that
// hold their slot, exactly 3 get in; Done frees a slot.
func TestInFlightCap(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := parseCfg(t, store, "[[clients]]\nid = \"app\"\nmax_in_flight = 3\n")
			l := newLimiter(t, cfg, Options{})
			ctx := context.Background()
			tickets := make(chan *Ticket, 200)
			var refused atomic.Int64
			race(200, func(int) {
				tk, err := l.Admit(ctx, Identity{Client: "app"})
				if err != nil {
					var e *fault.Error
					if errors.As(err, &e) && e.Kind == fault.RateLimited && strings.Contains(e.Msg, "in flight") {
						refused.Add(1)
					}
					return
				}
				tickets <- tk
			})
			close(tickets)
			var held []*Ticket
			for tk := range tickets {
				held = append(held, tk)
			}
			if len(held) != 3 || refused.Load() != 197 {
				t.Fatalf("admitted %d refused %d, want 3 and 197", len(held), refused.Load())
			}
			rep, err := l.Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Clients[0].InFlight != 3 || rep.Clients[0].MaxInFlight != 3 {
				t.Fatalf("report in flight %+v", rep.Clients[0])
			}
			held[0].Done()
			held[0].Done() // idempotent: must not free a second slot
			tk, err := l.Admit(ctx, Identity{Client: "app"})
			if err != nil {
				t.Fatalf("admit after Done: %v", err)
			}
			if _, err := l.Admit(ctx, Identity{Client: "app"}); err == nil {
				t.Fatal("a fourth request got in after one Done called twice")
			}
			tk.Done()
			held[1].Done()
			held[2].Done()
		})
	}
}

// TestInFlightLeaseExpires: slots of an instance that died (closed without
// Done, so nothing refreshes them) expire after the lease; live ones are
// refreshed past it.
func TestInFlightLeaseExpires(t *testing.T) {
	cfg := parseCfg(t, "redis", "[[clients]]\nid = \"app\"\nmax_in_flight = 2\n")
	prefix := testPrefix(t)
	lease := 600 * time.Millisecond
	dead := newLimiter(t, cfg, Options{KeyPrefix: prefix, Lease: lease})
	live := newLimiter(t, cfg, Options{KeyPrefix: prefix, Lease: lease})
	ctx := context.Background()
	if _, err := dead.Admit(ctx, Identity{Client: "app"}); err != nil {
		t.Fatal(err)
	}
	kept, err := live.Admit(ctx, Identity{Client: "app"})
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // crash: no Done, no refresh
	if _, err := live.Admit(ctx, Identity{Client: "app"}); err == nil {
		t.Fatal("third slot granted while two are held")
	}
	time.Sleep(2 * lease)
	// The dead slot expired; the live one was refreshed and still counts.
	tk, err := live.Admit(ctx, Identity{Client: "app"})
	if err != nil {
		t.Fatalf("dead instance's slot did not expire: %v", err)
	}
	if _, err := live.Admit(ctx, Identity{Client: "app"}); err == nil {
		t.Fatal("live slot was not refreshed: a third request got in")
	}
	tk.Done()
	kept.Done()
}

// TestTokensPerMinute: a user past user_tokens_per_minute is refused until
// the minute ends; usage is recorded by Settle.
func TestTokensPerMinute(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			clk := newClock(time.Now().UTC().Truncate(time.Minute).Add(10 * time.Second))
			cfg := parseCfg(t, store, "[limits]\nuser_tokens_per_minute = 1000\n[[clients]]\nid = \"app\"\n")
			l := newLimiter(t, cfg, Options{Now: clk.Now})
			ctx := context.Background()
			bob := Identity{Client: "app", User: "bob"}
			use := func(n int64) {
				t.Helper()
				tk, err := l.Admit(ctx, bob)
				if err != nil {
					t.Fatalf("admit: %v", err)
				}
				defer tk.Done()
				r, err := l.Reserve(ctx, bob, "claude-haiku-4-5", 10, 10)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Settle(ctx, "claude-haiku-4-5", Usage{InputTokens: n / 2, OutputTokens: n - n/2}); err != nil {
					t.Fatal(err)
				}
			}
			use(600)
			use(399) // 999 < 1000: still admitted
			// Admitted at 999, but the worst case (20 tokens) is reserved
			// in the window, and does not fit.
			tk, err := l.Admit(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Reserve(ctx, bob, "claude-haiku-4-5", 10, 10)
			tk.Done()
			e := asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, `user "bob" has 999 of 1000`) || e.RetryAfter != 50*time.Second {
				t.Fatalf("refusal %q retry %v", e.Msg, e.RetryAfter)
			}
			// A call that used more than it reserved (the estimate was
			// low) is still recorded in full: the window goes past the
			// limit and Admit refuses outright.
			tk, err = l.Admit(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Reserve(ctx, bob, "claude-haiku-4-5", 0, 1)
			tk.Done()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Settle(ctx, "claude-haiku-4-5", Usage{InputTokens: 150, OutputTokens: 150}); err != nil {
				t.Fatal(err)
			}
			_, err = l.Admit(ctx, bob)
			e = asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, `user "bob" used 1299 of 1000`) {
				t.Fatalf("refusal %q", e.Msg)
			}
			// Other users and user-less requests are not affected.
			if tk, err := l.Admit(ctx, Identity{Client: "app", User: "eve"}); err != nil {
				t.Fatal(err)
			} else {
				tk.Done()
			}
			rep, err := l.Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, u := range rep.Users {
				if u.User == "bob" {
					found = u.TokensThisMinute == 1299 && u.TokensPerMinute == 1000
				}
			}
			if !found {
				t.Fatalf("report users %+v lack bob at 1299/1000", rep.Users)
			}
			clk.Set(clk.Now().Add(time.Minute))
			use(10)
		})
	}
}

// TestTokensPerMinuteReservedUnderConcurrency: the per-minute token limit
// holds when many calls reserve at once (the worst case is held before the
// call, not checked after), and released or settled calls give back what
// they did not use.
func TestTokensPerMinuteReservedUnderConcurrency(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := parseCfg(t, store, "[limits]\nuser_tokens_per_minute = 1000\n[[clients]]\nid = \"app\"\n")
			clk := newClock(time.Now().UTC().Truncate(time.Minute).Add(5 * time.Second))
			l := newLimiter(t, cfg, Options{Now: clk.Now})
			ctx := context.Background()
			bob := Identity{Client: "app", User: "bob"}
			const callers = 32 // more than the cores
			var ok atomic.Int64
			var held sync.Mutex
			var rs []*Reservation
			var wg sync.WaitGroup
			for i := 0; i < callers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := l.Reserve(ctx, bob, "claude-haiku-4-5", 100, 100)
					if err != nil {
						asError(t, err, fault.RateLimited)
						return
					}
					ok.Add(1)
					held.Lock()
					rs = append(rs, r)
					held.Unlock()
				}()
			}
			wg.Wait()
			if n := ok.Load(); n != 5 {
				t.Fatalf("%d of %d calls of 200 tokens reserved under a limit of 1000, want 5", n, callers)
			}
			// One releases (failed before the call), one settles lower.
			rs[0].Release(ctx)
			if _, err := rs[1].Settle(ctx, "claude-haiku-4-5", Usage{InputTokens: 10, OutputTokens: 10}); err != nil {
				t.Fatal(err)
			}
			// 3 x 200 held + 20 used = 620: one more fits, the next does not.
			for i := 0; i < 1; i++ {
				if _, err := l.Reserve(ctx, bob, "claude-haiku-4-5", 100, 100); err != nil {
					t.Fatalf("reserve %d after release: %v", i, err)
				}
			}
			if _, err := l.Reserve(ctx, bob, "claude-haiku-4-5", 100, 100); err == nil {
				t.Fatal("a reservation past the limit was granted")
			}
			// A request bigger than the whole limit is refused outright.
			_, err := l.Reserve(ctx, Identity{Client: "app", User: "eve"}, "claude-haiku-4-5", 10, 5000)
			if e := asError(t, err, fault.RateLimited); !strings.Contains(e.Msg, "more than the 1000") {
				t.Fatalf("refusal %q", e.Msg)
			}
		})
	}
}

// TestAbsurdCostsSaturate: a huge max_tokens or usage never wraps to a
// negative cost (which would be a credit).
func TestAbsurdCostsSaturate(t *testing.T) {
	p := price{in: 3000, out: 15000, cacheWrite: 3750, cacheRead: 300}
	for _, tc := range []struct{ in, out int64 }{{0, 700000000000000}, {1 << 62, 1 << 62}, {1 << 40, 0}} {
		if c := p.worstCase(tc.in, tc.out); c <= 0 {
			t.Fatalf("worstCase(%d, %d) = %d", tc.in, tc.out, c)
		}
		if c := p.nanoCost(Usage{InputTokens: tc.in, OutputTokens: tc.out}); c <= 0 {
			t.Fatalf("nanoCost(%d, %d) = %d", tc.in, tc.out, c)
		}
	}
	if satAdd(1<<62, 1<<62) != maxNano {
		t.Fatal("satAdd wrapped")
	}
}

func TestAuthFailures(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := parseCfg(t, store, "[limits]\nauth_fail_rate = \"3-M\"\n")
			l := newLimiter(t, cfg, Options{})
			ctx := context.Background()
			for i := 1; i <= 3; i++ {
				if err := l.AuthFailure(ctx, "192.0.2.1", ""); err != nil {
					t.Fatalf("failure %d blocked early: %v", i, err)
				}
			}
			e := asError(t, l.AuthFailure(ctx, "192.0.2.1", ""), fault.RateLimited)
			if !strings.Contains(e.Msg, "failed authentications") || e.RetryAfter <= 0 {
				t.Fatalf("refusal %+v", e)
			}
			// Further failures from it are refused, repeatedly.
			for i := 0; i < 3; i++ {
				asError(t, l.AuthFailure(ctx, "192.0.2.1", ""), fault.RateLimited)
			}
			if err := l.AuthFailure(ctx, "192.0.2.2", ""); err != nil {
				t.Fatalf("another address is blocked: %v", err)
			}
		})
	}
}

// TestAdmitBadInput: bad identities get an error, not a panic.
func TestAdmitBadInput(t *testing.T) {
	cfg := parseCfg(t, "memory", "[limits]\nclient_rate = \"5-M\"\n")
	l := newLimiter(t, cfg, Options{})
	ctx := context.Background()
	if _, err := l.Admit(ctx, Identity{}); err == nil {
		t.Fatal("empty client admitted")
	}
	if _, err := l.Reserve(ctx, Identity{}, "m", 1, 1); err == nil {
		t.Fatal("empty client reserved")
	}
	if _, err := l.Reserve(ctx, Identity{Client: "x"}, "m", -1, 1); err == nil {
		t.Fatal("negative tokens reserved")
	}
	// Ids that would collide or blow up keys stay distinct and bounded.
	long := strings.Repeat("x", 100000)
	for _, id := range []Identity{{Client: "a:b", User: "c"}, {Client: "a", User: "b:c"}, {Client: long, User: long}} {
		tk, err := l.Admit(ctx, id)
		if err != nil {
			t.Fatalf("admit %.20q: %v", id.Client, err)
		}
		tk.Done()
	}
	var nilTicket *Ticket
	nilTicket.Done()
	var nilRes *Reservation
	nilRes.Release(ctx)
	if _, err := nilRes.Settle(ctx, "m", Usage{}); err == nil {
		t.Fatal("nil reservation settled")
	}
}

// TestZeroConfig: the zero Config limits nothing and keeps its counts in
// memory only.
func TestZeroConfig(t *testing.T) {
	l := newLimiter(t, Config{}, Options{})
	ctx := context.Background()
	id := Identity{Client: "app", User: "bob"}
	for range 50 {
		tk, err := l.Admit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := l.Reserve(ctx, id, sonnet, 1e6, 1e6)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 1e6, OutputTokens: 1e6}); err != nil {
			t.Fatal(err)
		}
		tk.Done()
	}
	if err := l.AuthFailure(ctx, "192.0.2.1", "k"); err != nil {
		t.Fatalf("auth failure counted without a rate: %v", err)
	}
	if rep, err := l.Usage(ctx); err != nil || rep.Store != StoreMemory {
		t.Fatalf("report %+v, %v", rep, err)
	}
}

// TestRateString: a Rate reads as config.toml writes it.
func TestRateString(t *testing.T) {
	cases := []struct {
		r    Rate
		want string
	}{
		{Rate{10, time.Minute}, "10-M"},
		{Rate{1, time.Second}, "1-S"},
		{Rate{37, time.Hour}, "37-H"},
		{Rate{2, 24 * time.Hour}, "2-D"},
		{Rate{5, 90 * time.Second}, "5-1m30s"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.r.String(); got != tc.want {
				t.Fatalf("%+v is %q, want %q", tc.r, got, tc.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Run("redis env unset", func(t *testing.T) {
		c := Config{Store: Store{Kind: StoreRedis, RedisURLEnv: "MOAT_TEST_UNSET_REDIS_URL"}}
		if _, err := New(context.Background(), c, Options{}); err == nil || !strings.Contains(err.Error(), "MOAT_TEST_UNSET_REDIS_URL") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("redis unreachable", func(t *testing.T) {
		c := Config{Store: Store{Kind: StoreRedis, RedisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t))}}
		if _, err := New(context.Background(), c, Options{}); err == nil || !strings.Contains(err.Error(), "connecting to redis") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown store", func(t *testing.T) {
		if _, err := New(context.Background(), Config{Store: Store{Kind: "disk"}}, Options{}); err == nil || !strings.Contains(err.Error(), `unknown limits.store "disk"`) {
			t.Fatalf("err = %v", err)
		}
	})
	invalid := []struct {
		name, want string
		cfg        Config
	}{
		{"rate allowing nothing", "client rate: invalid rate 0 per 1m0s", Config{ClientRate: Rate{Period: time.Minute}}},
		{"rate without period", `client "app": user rate: invalid rate 3 per 0s`, Config{Clients: []Client{{ID: "app", UserRate: Rate{Count: 3}}}}},
		{"budget without period", "budget 0: unknown period \"\"", Config{Budgets: []Budget{{Scope: ScopeGlobal, USD: 1}}}},
		{"budget without cap", "budget 0: no usd or tokens cap", Config{Budgets: []Budget{{Scope: ScopeUser, Period: PeriodDay}}}},
		{"negative budget", "budget 1: usd and tokens must not be negative", Config{Budgets: []Budget{{Scope: ScopeUser, Period: PeriodDay, USD: 1}, {Scope: ScopeGlobal, Period: PeriodMonth, Tokens: -1, USD: 1}}}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := New(context.Background(), tc.cfg, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("state file locked", func(t *testing.T) {
		cfg := parseCfg(t, "memory", "")
		newLimiter(t, cfg, Options{})
		if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "locked by another process") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestConfigCopied: changing a Config after New does not change what
// the Limiter enforces; only Reconfigure does.
func TestConfigCopied(t *testing.T) {
	cfg := parseCfg(t, "memory", "[[clients]]\nid = \"app\"\nmax_in_flight = 1\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\ntokens = 100\nalerts = [0.5]\n[pricing.\"m\"]\ninput = 1\noutput = 1\n")
	l := newLimiter(t, cfg, Options{})
	cfg.Clients[0].MaxInFlight = 10
	cfg.Budgets[0].Tokens = 1e9
	cfg.Budgets[0].Alerts[0] = 0.9
	cfg.Pricing["m"] = Pricing{Input: 1000, Output: 1000}
	ctx := context.Background()
	id := Identity{Client: "app"}
	tk, err := l.Admit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Done()
	if _, err := l.Admit(ctx, id); err == nil {
		t.Fatal("second call admitted: the in-flight cap changed with the caller's Config")
	}
	if _, err := l.Reserve(ctx, id, "m", 100, 100); err == nil {
		t.Fatal("200 tokens reserved: the budget changed with the caller's Config")
	}
	if got := l.Cost("m", Usage{InputTokens: 1e6}); got != 1 {
		t.Fatalf("cost %v, want 1: the prices changed with the caller's Config", got)
	}
	if got := l.pol.Load().cfg.Budgets[0].Alerts[0]; got != 0.5 {
		t.Fatalf("alert threshold %v, want 0.5", got)
	}
}
