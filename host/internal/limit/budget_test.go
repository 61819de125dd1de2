package limit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

const (
	sonnet = "claude-sonnet-4-5"
	// Worst case of Reserve(sonnet, 1000, 2000): 1000 input at the cache
	// write price (3.75/MTok) + 2000 output at 15/MTok.
	sonnetWorstNano = 1000*3750 + 2000*15000
)

// budgetFor returns the report line of a budget subject.
func budgetFor(t *testing.T, l *Limiter, scope, subject, period string) BudgetReport {
	t.Helper()
	rep, err := l.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rep.Budgets {
		if b.Scope == scope && b.Subject == subject && b.Period == period {
			return b
		}
	}
	t.Fatalf("no %s budget for %q (%s) in report %+v", scope, subject, period, rep.Budgets)
	return BudgetReport{}
}

// TestBudgetNeverExceeded: 200 racing requests reserve the worst case and
// settle random smaller real usage (cache tokens included). The settled sum
// never passes the budget, nothing stays reserved, and once refused with
// nothing in flight less than one worst case is left.
func TestBudgetNeverExceeded(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		left  func(b BudgetReport) float64 // what is left, in worst cases
		spent func(b BudgetReport) float64
		limit float64
	}{
		{
			name:  "usd",
			body:  "[[budgets]]\nscope = \"client\"\nid = \"app\"\nperiod = \"month\"\nusd = 1.0\n",
			left:  func(b BudgetReport) float64 { return (b.USDLimit - b.USDSpent) / nanoToUSD(sonnetWorstNano) },
			spent: func(b BudgetReport) float64 { return b.USDSpent },
			limit: 1.0,
		},
		{
			name:  "tokens",
			body:  "[[budgets]]\nscope = \"user\"\nperiod = \"day\"\ntokens = 90000\n",
			left:  func(b BudgetReport) float64 { return float64(b.TokensLimit-b.TokensSpent) / 3000 },
			spent: func(b BudgetReport) float64 { return float64(b.TokensSpent) },
			limit: 90000,
		},
	}
	for _, store := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				cfg := parseCfg(t, store, "[[clients]]\nid = \"app\"\n"+tc.body)
				l := newLimiter(t, cfg, Options{})
				ctx := context.Background()
				id := Identity{Client: "app", User: "bob"}
				var spentNano, spentTok, inflight, refusals, settles atomic.Int64
				var failed atomic.Value
				settleOne := func(rng *rand.Rand, r *Reservation) {
					in := rng.Int64N(1001)
					cw := rng.Int64N(in + 1)
					cr := rng.Int64N(in - cw + 1)
					u := Usage{InputTokens: in - cw - cr, CacheCreationInputTokens: cw, CacheReadInputTokens: cr, OutputTokens: rng.Int64N(2001)}
					cost, err := r.Settle(ctx, sonnet, u)
					if err != nil {
						failed.Store(err)
					}
					spentNano.Add(usdToNano(cost))
					spentTok.Add(u.Tokens())
					settles.Add(1)
				}
				race(200, func(i int) {
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					for attempt := 0; attempt < 500; attempt++ {
						r, err := l.Reserve(ctx, id, sonnet, 1000, 2000)
						if err != nil {
							busy := inflight.Load() > 0
							var e *fault.Error
							if !errors.As(err, &e) || e.Kind != fault.BudgetExhausted || !strings.Contains(e.Msg, "budget exhausted") {
								failed.Store(err)
								return
							}
							refusals.Add(1)
							if !busy {
								return
							}
							time.Sleep(time.Millisecond) // wait for calls in flight to settle
							continue
						}
						inflight.Add(1)
						time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond) // the upstream call
						settleOne(rng, r)
						inflight.Add(-1)
					}
				})
				if v := failed.Load(); v != nil {
					t.Fatalf("unexpected error: %v", v)
				}
				b := budgetFor(t, l, map[string]string{"usd": "client", "tokens": "user"}[tc.name], map[string]string{"usd": "app", "tokens": "bob"}[tc.name], map[string]string{"usd": "month", "tokens": "day"}[tc.name])
				if b.USDReserved != 0 || b.TokensReserved != 0 {
					t.Fatalf("reservations leaked: %+v", b)
				}
				// Top off one at a time until refused: the race must not have
				// left the budget in a state that refuses what fits.
				rng := rand.New(rand.NewPCG(99, 7))
				for {
					r, err := l.Reserve(ctx, id, sonnet, 1000, 2000)
					if err != nil {
						asError(t, err, fault.BudgetExhausted)
						break
					}
					settleOne(rng, r)
				}
				b = budgetFor(t, l, b.Scope, b.Subject, b.Period)
				var want float64
				if tc.name == "usd" {
					want = nanoToUSD(spentNano.Load())
				} else {
					want = float64(spentTok.Load())
				}
				if math.Abs(tc.spent(b)-want) > 1e-9 {
					t.Fatalf("store spent %v, settled sum %v", tc.spent(b), want)
				}
				if want > tc.limit {
					t.Fatalf("budget exceeded: settled %v of %v", want, tc.limit)
				}
				if left := tc.left(b); left >= 1 || left < 0 {
					t.Fatalf("after a refusal %.3f worst cases are left; want [0, 1)", left)
				}
				if refusals.Load() == 0 || settles.Load() < 20 {
					t.Fatalf("no contention: %d settles, %d refusals", settles.Load(), refusals.Load())
				}
			})
		}
	}
}

// TestSharedAcrossInstances: two Limiters on one Redis (two moat
// processes) share request rates, in-flight caps and budgets.
func TestSharedAcrossInstances(t *testing.T) {
	cfg := parseCfg(t, "redis", `[[clients]]
id = "app"
rate = "40-M"
max_in_flight = 5
[[budgets]]
scope = "global"
period = "month"
usd = 0.5
`)
	prefix := testPrefix(t)
	a := newLimiter(t, cfg, Options{KeyPrefix: prefix})
	b := newLimiter(t, cfg, Options{KeyPrefix: prefix})
	ctx := context.Background()
	id := Identity{Client: "app"}
	var admitted atomic.Int64
	var mu sync.Mutex
	var held []*Ticket
	race(200, func(i int) {
		l := a
		if i%2 == 1 {
			l = b
		}
		tk, err := l.Admit(ctx, id)
		if err == nil {
			admitted.Add(1)
			mu.Lock()
			held = append(held, tk)
			mu.Unlock()
		}
	})
	if admitted.Load() != 5 {
		t.Fatalf("two instances admitted %d in flight, want 5", admitted.Load())
	}
	for _, tk := range held {
		tk.Done()
	}
	// 200 counted already against 40-M: both instances refuse now.
	for _, l := range []*Limiter{a, b} {
		_, err := l.Admit(ctx, id)
		asError(t, err, fault.RateLimited)
	}
	// Budget: $0.5 holds 14 sonnet worst cases; split over the two.
	var reserved []*Reservation
	var refusedCount atomic.Int64
	race(40, func(i int) {
		l := a
		if i%2 == 1 {
			l = b
		}
		r, err := l.Reserve(ctx, id, sonnet, 1000, 2000)
		if err != nil {
			refusedCount.Add(1)
			return
		}
		mu.Lock()
		reserved = append(reserved, r)
		mu.Unlock()
	})
	if want := int(usdToNano(0.5) / sonnetWorstNano); len(reserved) != want {
		t.Fatalf("reserved %d across instances, want %d", len(reserved), want)
	}
	for _, r := range reserved {
		if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 1000, OutputTokens: 2000}); err != nil {
			t.Fatal(err)
		}
	}
	ba, bb := budgetFor(t, a, "global", "*", "month"), budgetFor(t, b, "global", "*", "month")
	if ba != bb || ba.USDSpent != nanoToUSD(int64(len(reserved))*(1000*3000+2000*15000)) {
		t.Fatalf("instances disagree or wrong spend: %+v vs %+v", ba, bb)
	}
}

func TestReleaseAndSettleOnce(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			// Room for exactly one worst case.
			cfg := parseCfg(t, store, "[[budgets]]\nscope = \"user\"\nid = \"bob\"\nperiod = \"day\"\nusd = 0.04\n")
			l := newLimiter(t, cfg, Options{})
			ctx := context.Background()
			bob := Identity{Client: "app", User: "bob"}
			r1, err := l.Reserve(ctx, bob, sonnet, 1000, 2000)
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Reserve(ctx, bob, sonnet, 1000, 2000)
			e := asError(t, err, fault.BudgetExhausted)
			for _, want := range []string{`user "bob" daily budget`, "$0.0338 held", "resets at "} {
				if !strings.Contains(e.Msg, want) {
					t.Fatalf("refusal %q lacks %q", e.Msg, want)
				}
			}
			if e.RetryAfter <= 0 || e.RetryAfter > 24*time.Hour {
				t.Fatalf("retry after %v", e.RetryAfter)
			}
			// Other users have no such budget.
			if _, err := l.Reserve(ctx, Identity{Client: "app", User: "eve"}, sonnet, 1000, 2000); err != nil {
				t.Fatal(err)
			}
			r1.Release(ctx)
			r1.Release(ctx)
			if c, err := r1.Settle(ctx, sonnet, Usage{OutputTokens: 5}); c != 0 || err != nil {
				t.Fatalf("settle after release = %v, %v; want a no-op", c, err)
			}
			r2, err := l.Reserve(ctx, bob, sonnet, 1000, 2000)
			if err != nil {
				t.Fatalf("release did not free the reservation: %v", err)
			}
			u := Usage{InputTokens: 100, OutputTokens: 100}
			c1, err := r2.Settle(ctx, sonnet, u)
			if err != nil {
				t.Fatal(err)
			}
			c2, _ := r2.Settle(ctx, sonnet, Usage{OutputTokens: 1e6})
			r2.Release(ctx)
			if c1 != c2 || c1 != l.Cost(sonnet, u) {
				t.Fatalf("settle not idempotent: %v then %v", c1, c2)
			}
			if b := budgetFor(t, l, "user", "bob", "day"); b.USDSpent != c1 || b.USDReserved != 0 {
				t.Fatalf("budget after settle+release: %+v", b)
			}
		})
	}
}

// TestOverrunIsRecorded: usage above the reservation (an input estimate
// that was too low) is recorded as it was, and the next call is refused.
func TestOverrunIsRecorded(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := parseCfg(t, store, "[[budgets]]\nscope = \"global\"\nperiod = \"month\"\ntokens = 1000\n")
			l := newLimiter(t, cfg, Options{})
			ctx := context.Background()
			id := Identity{Client: "app"}
			r, err := l.Reserve(ctx, id, sonnet, 10, 10)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 1200}); err != nil {
				t.Fatal(err)
			}
			if b := budgetFor(t, l, "global", "*", "month"); b.TokensSpent != 1200 || b.TokensRemaining != 0 {
				t.Fatalf("overrun not recorded: %+v", b)
			}
			_, err = l.Reserve(ctx, id, sonnet, 0, 1)
			e := asError(t, err, fault.BudgetExhausted)
			if !strings.Contains(e.Msg, "global monthly budget") || !strings.Contains(e.Msg, "1200 tokens used") {
				t.Fatalf("refusal %q", e.Msg)
			}
		})
	}
}

// TestRestartKeepsSpend: a new Limiter (a restarted moat) sees the
// period's spend: from the bbolt state file, or from Redis.
func TestRestartKeepsSpend(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state.db")
			body := "[[budgets]]\nscope = \"client\"\nperiod = \"month\"\nusd = 0.05\nalerts = [0.5]\n"
			cfg := parseCfgAt(t, store, "", state, body)
			prefix := testPrefix(t)
			var alerts atomic.Int64
			log := alertCounter(&alerts)
			ctx := context.Background()
			id := Identity{Client: "app"}
			l1, err := New(ctx, cfg, Options{KeyPrefix: prefix, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			r, err := l1.Reserve(ctx, id, sonnet, 1000, 2000)
			if err != nil {
				t.Fatal(err)
			}
			cost, err := r.Settle(ctx, sonnet, Usage{InputTokens: 1000, OutputTokens: 2000})
			if err != nil {
				t.Fatal(err)
			}
			if err := l1.Close(); err != nil {
				t.Fatal(err)
			}
			if alerts.Load() != 1 {
				t.Fatalf("%d alerts before restart, want 1", alerts.Load())
			}
			l2 := newLimiter(t, cfg, Options{KeyPrefix: prefix, Logger: log})
			if b := budgetFor(t, l2, "client", "app", "month"); b.USDSpent != cost {
				t.Fatalf("after restart spent %v, want %v", b.USDSpent, cost)
			}
			// $0.033 spent of $0.05: another worst case ($0.034) no longer fits.
			_, err = l2.Reserve(ctx, id, sonnet, 1000, 2000)
			asError(t, err, fault.BudgetExhausted)
			r, err = l2.Reserve(ctx, id, sonnet, 100, 100)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 10}); err != nil {
				t.Fatal(err)
			}
			if alerts.Load() != 1 {
				t.Fatalf("the 0.5 alert fired again after restart (%d)", alerts.Load())
			}
		})
	}
}

// TestPeriodRollover: spend resets at the UTC day and month boundaries.
func TestPeriodRollover(t *testing.T) {
	cases := []struct {
		period      string
		last, first time.Time
		stillSame   time.Time
	}{
		{"day", time.Date(2031, 3, 14, 23, 59, 59, 0, time.UTC), time.Date(2031, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2031, 3, 14, 0, 0, 0, 0, time.UTC)},
		{"month", time.Date(2031, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 12, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, store := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.period, func(t *testing.T) {
				clk := newClock(tc.stillSame)
				cfg := parseCfg(t, store, "[[budgets]]\nscope = \"global\"\nperiod = \""+tc.period+"\"\ntokens = 100\n")
				l := newLimiter(t, cfg, Options{Now: clk.Now})
				ctx := context.Background()
				id := Identity{Client: "app"}
				spend := func() error {
					r, err := l.Reserve(ctx, id, sonnet, 50, 50)
					if err != nil {
						return err
					}
					_, err = r.Settle(ctx, sonnet, Usage{InputTokens: 50, OutputTokens: 50})
					return err
				}
				if err := spend(); err != nil {
					t.Fatal(err)
				}
				clk.Set(tc.last)
				err := spend()
				e := asError(t, err, fault.BudgetExhausted)
				if !strings.Contains(e.Msg, "resets at "+tc.first.Format(time.RFC3339)) || e.RetryAfter != time.Second {
					t.Fatalf("refusal %q retry %v", e.Msg, e.RetryAfter)
				}
				clk.Set(tc.first)
				if err := spend(); err != nil {
					t.Fatalf("new %s did not reset the budget: %v", tc.period, err)
				}
				if b := budgetFor(t, l, "global", "*", tc.period); b.TokensSpent != 100 || !b.PeriodStart.Equal(tc.first) {
					t.Fatalf("report after rollover %+v", b)
				}
			})
		}
	}
}

// alertCounter is a logger counting "budget alert" records.
func alertCounter(n *atomic.Int64) *slog.Logger { return countLogger("budget alert", n) }

// TestAlerts: thresholds fire once per period each, in the log and as JSON
// to the webhook, deduplicated across instances; a refusal fires what is
// left; a new period fires again.
func TestAlerts(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			var mu sync.Mutex
			var got []Alert // guarded by mu
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var a Alert
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("webhook got %s %s", r.Method, r.Header.Get("Content-Type"))
				}
				if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
					t.Errorf("webhook body: %v", err)
				}
				mu.Lock()
				got = append(got, a)
				mu.Unlock()
			}))
			defer srv.Close()
			clk := newClock(time.Date(2031, 5, 10, 12, 0, 0, 0, time.UTC))
			cfg := parseCfg(t, store, `[[clients]]
id = "app"
[[budgets]]
scope = "client"
id = "app"
period = "month"
tokens = 1000
alerts = [0.8, 0.5, 1.0]
webhook = "`+srv.URL+`/hook"
`)
			prefix := testPrefix(t)
			var logged atomic.Int64
			opts := Options{KeyPrefix: prefix, Now: clk.Now, Logger: alertCounter(&logged), Environment: "staging"}
			a := newLimiter(t, cfg, opts)
			b := a // memory instances do not share: one instance, racing
			if store == "redis" {
				b = newLimiter(t, cfg, opts)
			}
			ctx := context.Background()
			id := Identity{Client: "app"}
			spend := func(l *Limiter, n int64) error {
				r, err := l.Reserve(ctx, id, sonnet, n, 0)
				if err != nil {
					return err
				}
				_, err = r.Settle(ctx, sonnet, Usage{InputTokens: n})
				return err
			}
			// 400 then 8 x 25 racing on both instances: crosses 0.5 once.
			if err := spend(a, 400); err != nil {
				t.Fatal(err)
			}
			race(8, func(i int) {
				l := a
				if i%2 == 1 {
					l = b
				}
				if err := spend(l, 25); err != nil {
					t.Error(err)
				}
			})
			if err := spend(b, 250); err != nil { // 850: crosses 0.8
				t.Fatal(err)
			}
			if err := spend(a, 100); err != nil { // 950: nothing new
				t.Fatal(err)
			}
			if err := spend(b, 100); err == nil { // refused: fires 1.0
				t.Fatal("reservation past the budget admitted")
			}
			a.Close()
			b.Close() // waits for webhooks
			snapshot := func() []Alert {
				mu.Lock()
				defer mu.Unlock()
				return append([]Alert(nil), got...)
			}
			seen := snapshot()
			if len(seen) != 3 || logged.Load() != 3 {
				t.Fatalf("webhook got %d alerts, log %d; want 3 each: %+v", len(seen), logged.Load(), seen)
			}
			wantTh := map[float64]bool{0.5: false, 0.8: false, 1.0: true}
			for _, al := range seen {
				ex, ok := wantTh[al.Threshold]
				if !ok || al.Exhausted != ex || al.Scope != "client" || al.Subject != "app" || al.Period != "month" || al.Environment != "staging" ||
					al.TokensLimit != 1000 || al.Type != "budget_alert" || !al.ResetsAt.Equal(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("bad alert %+v", al)
				}
				delete(wantTh, al.Threshold)
				if al.Fraction < al.Threshold && !al.Exhausted {
					t.Fatalf("alert fired below its threshold: %+v", al)
				}
			}
			// Next month fires again (fresh instance, same store).
			clk.Set(time.Date(2031, 6, 2, 0, 0, 0, 0, time.UTC))
			c := newLimiter(t, cfg, opts)
			if err := spend(c, 600); err != nil {
				t.Fatal(err)
			}
			c.Close()
			seen = snapshot()
			if len(seen) != 4 || seen[3].Threshold != 0.5 {
				t.Fatalf("new period alerts %+v", seen[3:])
			}
		})
	}
}

func TestCost(t *testing.T) {
	cfg := parseCfg(t, "memory", `[pricing."my-model"]
input = 2
output = 10
[pricing."claude-sonnet-4-5"]
input = 3
output = 15
cache_write = 4
cache_read = 0.2
`)
	l := newLimiter(t, cfg, Options{})
	m := Usage{InputTokens: 1e6, OutputTokens: 1e6, CacheCreationInputTokens: 1e6, CacheReadInputTokens: 1e6}
	cases := []struct {
		model string
		u     Usage
		want  float64
	}{
		{"my-model", Usage{InputTokens: 1e6}, 2},
		{"my-model", m, 2 + 10 + 2.5 + 0.2},                         // derived cache prices
		{"claude-sonnet-4-5", m, 3 + 15 + 4 + 0.2},                  // configured cache prices
		{"claude-sonnet-4-5-20250929", m, 3 + 15 + 4 + 0.2},         // prefix of a configured key
		{"claude-opus-4-6", m, 5 + 25 + 6.25 + 0.5},                 // default table
		{"claude-opus-4-1-20250805", m, 15 + 75 + 18.75 + 1.5},      // legacy Opus price
		{"claude-haiku-4-5", Usage{OutputTokens: 1000}, 0.005},      // default table
		{"unknown-model", m, 15 + 75 + 18.75 + 1.5},                 // the dearest known
		{"my-model", Usage{InputTokens: -5, OutputTokens: 1e6}, 10}, // negatives ignored
		{"my-model", Usage{}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			if got := l.Cost(tc.model, tc.u); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Cost(%s, %+v) = %v, want %v", tc.model, tc.u, got, tc.want)
			}
		})
	}
}

// TestTooBigForBudget: a call whose worst case exceeds a whole budget is a
// 400 (waiting cannot help) and fires no "exhausted" alert.
func TestTooBigForBudget(t *testing.T) {
	cases := []struct {
		name, budget, want string
		in, out            int64
	}{
		{"usd", "usd = 0.01", "this call may cost up to $0.0338 but the global daily budget is $0.01", 1000, 2000},
		{"tokens", "tokens = 100", "this call may use up to 101 tokens but the global daily budget is 100", 1, 100},
	}
	for _, store := range stores {
		for _, tc := range cases {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				cfg := parseCfg(t, store, "[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nalerts = [0.5, 1.0]\n"+tc.budget+"\n")
				var alerts atomic.Int64
				l := newLimiter(t, cfg, Options{Logger: alertCounter(&alerts)})
				_, err := l.Reserve(context.Background(), Identity{Client: "app"}, sonnet, tc.in, tc.out)
				e := asError(t, err, fault.OverBudget)
				if !strings.Contains(e.Msg, tc.want) || !strings.Contains(e.Msg, "lower max_tokens") {
					t.Fatalf("message %q lacks %q", e.Msg, tc.want)
				}
				if alerts.Load() != 0 {
					t.Fatalf("%d alerts fired for an oversized request", alerts.Load())
				}
			})
		}
	}
}
