package limit

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

const appClient = "[[clients]]\nid = \"app\"\n"

// admitN admits n requests, releasing each, and reports how many were
// admitted before the first 429.
func admitN(t *testing.T, l *Limiter, id Identity, n int) int {
	t.Helper()
	for i := 0; i < n; i++ {
		tk, err := l.Admit(context.Background(), id)
		if err != nil {
			asError(t, err, fault.RateLimited)
			return i
		}
		tk.Done()
	}
	return n
}

// TestReconfigureRates: a new rate applies at once to the counter already
// running, in both directions, for client rates and per-client user rates.
func TestReconfigureRates(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state.db")
			addr := ""
			if store == "redis" {
				addr = redisAddr(t)
			}
			cfg := func(rate, userRate string) string {
				return "[limits]\nuser_rate = \"" + userRate + "\"\n" + appClient + "rate = \"" + rate + "\"\n"
			}
			l := newLimiter(t, parseCfgAt(t, store, addr, state, cfg("3-M", "100-M")), Options{})
			app := Identity{Client: "app"}
			if got := admitN(t, l, app, 2); got != 2 {
				t.Fatalf("admitted %d of the first 2", got)
			}
			// Raised to 5 per minute: the 2 already counted stay counted.
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, cfg("5-M", "100-M"))); err != nil {
				t.Fatalf("Reconfigure: %v", err)
			}
			if got := admitN(t, l, app, 10); got != 3 {
				t.Fatalf("after raising to 5-M admitted %d more, want 3 (counter kept at 2)", got)
			}
			// Lowered to 1 per minute: refused at once.
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, cfg("1-M", "100-M"))); err != nil {
				t.Fatalf("Reconfigure: %v", err)
			}
			_, err := l.Admit(context.Background(), app)
			e := asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, "1 requests per minute") {
				t.Errorf("refusal does not name the new rate: %q", e.Msg)
			}
			// The user rate follows too.
			bob := Identity{Client: "app", User: "bob"}
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, cfg("1000-M", "2-M"))); err != nil {
				t.Fatalf("Reconfigure: %v", err)
			}
			if got := admitN(t, l, bob, 5); got != 2 {
				t.Fatalf("user rate 2-M admitted %d", got)
			}
		})
	}
}

// TestReconfigureBudgetsKeepSpend: spend survives a reconfigure; a larger
// budget admits more, a budget below the spend refuses, and the report
// shows the new limit with the old spend.
func TestReconfigureBudgetsKeepSpend(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state.db")
			addr := ""
			if store == "redis" {
				addr = redisAddr(t)
			}
			budget := func(usd string) string {
				return appClient + "[[budgets]]\nscope = \"client\"\nid = \"app\"\nperiod = \"month\"\nusd = " + usd + "\n"
			}
			l := newLimiter(t, parseCfgAt(t, store, addr, state, budget("0.1")), Options{})
			ctx := context.Background()
			id := Identity{Client: "app"}
			spend := func() error {
				r, err := l.Reserve(ctx, id, sonnet, 1000, 2000)
				if err != nil {
					return err
				}
				_, err = r.Settle(ctx, sonnet, Usage{InputTokens: 1000, OutputTokens: 2000})
				return err
			}
			n := 0
			for ; n < 100; n++ {
				if err := spend(); err != nil {
					asError(t, err, fault.BudgetExhausted)
					break
				}
			}
			if n == 0 || n == 100 {
				t.Fatalf("spent %d calls in a $0.10 budget", n)
			}
			before := budgetFor(t, l, "client", "app", "month")
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, budget("0.2"))); err != nil {
				t.Fatalf("Reconfigure: %v", err)
			}
			after := budgetFor(t, l, "client", "app", "month")
			if after.USDLimit != 0.2 || math.Abs(after.USDSpent-before.USDSpent) > 1e-9 {
				t.Fatalf("after raising: limit %v spent %v, want 0.2 and %v", after.USDLimit, after.USDSpent, before.USDSpent)
			}
			if err := spend(); err != nil {
				t.Fatalf("raised budget refused: %v", err)
			}
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, budget("0.01"))); err != nil {
				t.Fatalf("Reconfigure: %v", err)
			}
			_, err := l.Reserve(ctx, id, sonnet, 10, 10)
			e := asError(t, err, fault.BudgetExhausted)
			if !strings.Contains(e.Msg, "budget exhausted") {
				t.Errorf("refusal %q", e.Msg)
			}
		})
	}
}

// TestReconfigureInFlightCap: held slots stay held across a reconfigure;
// the new cap counts them.
func TestReconfigureInFlightCap(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state.db")
			addr := ""
			if store == "redis" {
				addr = redisAddr(t)
			}
			capped := func(n string) string { return appClient + "max_in_flight = " + n + "\n" }
			l := newLimiter(t, parseCfgAt(t, store, addr, state, capped("1")), Options{})
			ctx := context.Background()
			id := Identity{Client: "app"}
			t1, err := l.Admit(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			defer t1.Done()
			if _, err := l.Admit(ctx, id); err == nil {
				t.Fatal("second call admitted with max_in_flight = 1")
			}
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, capped("2"))); err != nil {
				t.Fatal(err)
			}
			t2, err := l.Admit(ctx, id)
			if err != nil {
				t.Fatalf("second call refused after raising to 2: %v", err)
			}
			defer t2.Done()
			_, err = l.Admit(ctx, id)
			e := asError(t, err, fault.RateLimited)
			if !strings.Contains(e.Msg, "allows 2 at once") {
				t.Errorf("refusal %q", e.Msg)
			}
			// Without a cap at all, anything goes; the held slots are still
			// released by Done without error.
			if err := l.Reconfigure(parseCfgAt(t, store, addr, state, appClient)); err != nil {
				t.Fatal(err)
			}
			t3, err := l.Admit(ctx, id)
			if err != nil {
				t.Fatalf("uncapped call refused: %v", err)
			}
			t3.Done()
		})
	}
}

// TestReconfigurePricingAndTokens: new prices apply to new reservations;
// a reservation made before the swap settles at the prices it was made
// under. A token limit switched on starts counting at once.
func TestReconfigurePricingAndTokens(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	priced := func(in, out string, tpm string) string {
		return "[limits]\nuser_tokens_per_minute = " + tpm + "\n" + appClient +
			"[[budgets]]\nscope = \"global\"\nperiod = \"month\"\nusd = 100\n[pricing.\"my-model\"]\ninput = " + in + "\noutput = " + out + "\n"
	}
	l := newLimiter(t, parseCfgAt(t, "memory", "", state, priced("1", "2", "0")), Options{})
	ctx := context.Background()
	u := Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}
	if c := l.Cost("my-model", u); math.Abs(c-3) > 1e-9 {
		t.Fatalf("cost before = %v, want 3", c)
	}
	id := Identity{Client: "app", User: "bob"}
	old, err := l.Reserve(ctx, id, "my-model", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Reconfigure(parseCfgAt(t, "memory", "", state, priced("10", "20", "100"))); err != nil {
		t.Fatal(err)
	}
	if c := l.Cost("my-model", u); math.Abs(c-30) > 1e-9 {
		t.Fatalf("cost after = %v, want 30", c)
	}
	c, err := old.Settle(ctx, "my-model", u)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c-3) > 1e-9 {
		t.Fatalf("reservation from before the swap settled at %v, want the old price 3", c)
	}
	// The token window now has 2M tokens for bob against a limit of 100.
	_, err = l.Admit(ctx, id)
	e := asError(t, err, fault.RateLimited)
	if !strings.Contains(e.Msg, "token rate limit") {
		t.Fatalf("refusal %q", e.Msg)
	}
}

// TestReconfigureRefusesStoreChange: a config that changes the store is
// refused with a message that says a restart is needed, and the running
// policy stays.
func TestReconfigureRefusesStoreChange(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	body := appClient + "rate = \"2-M\"\n"
	l := newLimiter(t, parseCfgAt(t, "memory", "", state, body), Options{})
	loose := appClient + "rate = \"1000-M\"\n"
	cases := []struct {
		name, want string
		cfg        func() error
	}{
		{"memory to redis", "changing limits.store needs a restart", func() error {
			return l.Reconfigure(parseCfgAt(t, "redis", "127.0.0.1:1", state, loose))
		}},
		{"other state file", "changing limits.state_path needs a restart", func() error {
			return l.Reconfigure(parseCfgAt(t, "memory", "", filepath.Join(t.TempDir(), "other.db"), loose))
		}},
		{"rate allowing nothing", `client "app": rate: invalid rate 0 per 1m0s`, func() error {
			c := parseCfgAt(t, "memory", "", state, loose)
			c.Clients[0].Rate = Rate{Period: time.Minute}
			return l.Reconfigure(c)
		}},
		{"budget without scope", "budget 0: unknown scope", func() error {
			c := parseCfgAt(t, "memory", "", state, loose)
			c.Budgets = []Budget{{Period: PeriodDay, USD: 1}}
			return l.Reconfigure(c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reconfigure error = %v, want %q", err, tc.want)
			}
		})
	}
	// Still 2-M: the refused configs (1000-M) did not apply.
	if got := admitN(t, l, Identity{Client: "app"}, 5); got != 2 {
		t.Fatalf("admitted %d after refused reconfigures, want 2", got)
	}
	t.Run("redis url", func(t *testing.T) {
		addr := redisAddr(t)
		rl := newLimiter(t, parseCfgAt(t, "redis", addr, "", body), Options{})
		err := rl.Reconfigure(parseCfgAt(t, "redis", "127.0.0.1:1", "", loose))
		if err == nil || !strings.Contains(err.Error(), "changing limits.redis_url needs a restart") {
			t.Fatalf("Reconfigure error = %v", err)
		}
		err = rl.Reconfigure(parseCfgAt(t, "memory", "", state, loose))
		if err == nil || !strings.Contains(err.Error(), "changing limits.store needs a restart") {
			t.Fatalf("Reconfigure error = %v", err)
		}
	})
}

// TestReconfigureRace: Reconfigure racing Admit, Reserve and Settle is
// safe (run with -race), never loses a slot, and every call sees one
// whole policy: with rate R1 or R2 the admitted count is at most the
// larger.
func TestReconfigureRace(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	mk := func(cap string) string {
		return appClient + "max_in_flight = " + cap + "\n[[budgets]]\nscope = \"client\"\nperiod = \"month\"\nusd = 1000\n"
	}
	cfgs := []string{mk("3"), mk("5")}
	l := newLimiter(t, parseCfgAt(t, "memory", "", state, cfgs[0]), Options{})
	a := parseCfgAt(t, "memory", "", state, cfgs[0])
	b := parseCfgAt(t, "memory", "", state, cfgs[1])
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			c := a
			if i%2 == 1 {
				c = b
			}
			if err := l.Reconfigure(c); err != nil {
				t.Errorf("Reconfigure: %v", err)
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var held, maxHeld atomic.Int64
	var failed atomic.Value
	race(16, func(int) {
		ctx := context.Background()
		for j := 0; j < 30; j++ {
			tk, err := l.Admit(ctx, Identity{Client: "app"})
			if err != nil {
				var e *fault.Error
				if !errors.As(err, &e) || e.Kind != fault.RateLimited {
					failed.Store(err.Error())
				}
				continue
			}
			n := held.Add(1)
			for {
				m := maxHeld.Load()
				if n <= m || maxHeld.CompareAndSwap(m, n) {
					break
				}
			}
			r, err := l.Reserve(ctx, Identity{Client: "app"}, sonnet, 10, 10)
			if err != nil {
				failed.Store(err.Error())
			} else if _, err := r.Settle(ctx, sonnet, Usage{InputTokens: 1, OutputTokens: 1}); err != nil {
				failed.Store(err.Error())
			}
			held.Add(-1)
			tk.Done()
		}
	})
	stop.Store(true)
	wg.Wait()
	if v := failed.Load(); v != nil {
		t.Fatalf("unexpected error: %v", v)
	}
	if m := maxHeld.Load(); m > 5 {
		t.Fatalf("%d calls in flight at once, above the larger cap 5", m)
	}
	// Every slot was released: with cap 3 applied, 3 fit again.
	if err := l.Reconfigure(a); err != nil {
		t.Fatal(err)
	}
	var ts []*Ticket
	for i := 0; i < 3; i++ {
		tk, err := l.Admit(context.Background(), Identity{Client: "app"})
		if err != nil {
			t.Fatalf("slot %d not free after the race: %v", i, err)
		}
		ts = append(ts, tk)
	}
	for _, tk := range ts {
		tk.Done()
	}
}
