package limit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestUsageReport(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			clk := newClock(time.Now().UTC().Truncate(time.Minute).Add(5 * time.Second))
			cfg := parseCfg(t, store, `[limits]
client_rate = "100-M"
user_tokens_per_minute = 5000
[[clients]]
id = "app"
user_rate = "10-M"
max_in_flight = 4
[[clients]]
id = "other:app"
[[budgets]]
scope = "global"
period = "month"
usd = 100
[[budgets]]
scope = "client"
period = "day"
tokens = 100000
[[budgets]]
scope = "user"
period = "month"
usd = 1
`)
			l := newLimiter(t, cfg, Options{Now: clk.Now})
			ctx := context.Background()
			call := func(id Identity, u Usage) {
				t.Helper()
				tk, err := l.Admit(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				defer tk.Done()
				r, err := l.Reserve(ctx, id, sonnet, 1000, 1000)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Settle(ctx, sonnet, u); err != nil {
					t.Fatal(err)
				}
			}
			call(Identity{Client: "app", User: "bob"}, Usage{InputTokens: 1000, OutputTokens: 1000})
			call(Identity{Client: "app", User: "bob"}, Usage{InputTokens: 1000})
			call(Identity{Client: "other:app", User: "a:b%"}, Usage{OutputTokens: 100})
			held, err := l.Admit(ctx, Identity{Client: "app"})
			if err != nil {
				t.Fatal(err)
			}
			defer held.Done()
			pending, err := l.Reserve(ctx, Identity{Client: "app", User: "bob"}, sonnet, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			defer pending.Release(ctx)

			rep, err := l.Usage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Store != store || len(rep.Clients) != 2 {
				t.Fatalf("report %+v", rep)
			}
			app := rep.Clients[0]
			if app.ID != "app" || app.InFlight != 1 || app.MaxInFlight != 4 || app.Rate == nil || app.Rate.Limit != 100 || app.Rate.Remaining != 97 {
				t.Fatalf("client app %+v rate %+v", app, app.Rate)
			}
			if len(rep.Users) != 2 {
				t.Fatalf("users %+v", rep.Users)
			}
			for _, u := range rep.Users {
				switch u.User {
				case "bob":
					// 3,000 spent and 1,000 held by the pending call.
					if u.Client != "app" || u.Rate.Limit != 10 || u.Rate.Remaining != 8 || u.TokensThisMinute != 4000 || u.TokensPerMinute != 5000 {
						t.Fatalf("bob %+v rate %+v", u, u.Rate)
					}
				case "a:b%":
					if u.Client != "other:app" || u.TokensThisMinute != 100 {
						t.Fatalf("escaped user %+v", u)
					}
				default:
					t.Fatalf("unexpected user %+v", u)
				}
			}
			want := map[string]func(b BudgetReport) bool{
				"global/*": func(b BudgetReport) bool {
					return b.USDSpent == l.Cost(sonnet, Usage{InputTokens: 2000, OutputTokens: 1100}) && b.USDReserved == 0.015 && b.USDLimit == 100
				},
				"client/app": func(b BudgetReport) bool {
					return b.TokensSpent == 3000 && b.TokensReserved == 1000 && b.TokensRemaining == 96000 && b.Period == "day"
				},
				"client/other:app": func(b BudgetReport) bool { return b.TokensSpent == 100 },
				"user/bob": func(b BudgetReport) bool {
					return b.USDSpent == l.Cost(sonnet, Usage{InputTokens: 2000, OutputTokens: 1000}) && b.USDRemaining > 0.9 && b.USDRemaining < 1
				},
				"user/a:b%": func(b BudgetReport) bool { return b.USDSpent == l.Cost(sonnet, Usage{OutputTokens: 100}) },
			}
			for _, b := range rep.Budgets {
				k := b.Scope + "/" + b.Subject
				check, ok := want[k]
				if !ok || !check(b) {
					t.Fatalf("budget %s unexpected: %+v", k, b)
				}
				delete(want, k)
			}
			if len(want) != 0 {
				t.Fatalf("budgets missing from report: %v (got %+v)", want, rep.Budgets)
			}
			js, err := json.Marshal(rep)
			if err != nil || !strings.Contains(string(js), `"usd_remaining"`) {
				t.Fatalf("json %s %v", js, err)
			}
		})
	}
}

// FuzzEsc: escaped ids never contain the key separator, round-trip, and
// distinct ids give distinct keys.
func FuzzEsc(f *testing.F) {
	for _, s := range []string{"", "app", "a:b", "%", "%3A", "a%", "#x", strings.Repeat("y", 200)} {
		f.Add(s, "a:b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := esc(a), esc(b)
		if strings.Contains(ea, ":") {
			t.Fatalf("esc(%q) = %q contains ':'", a, ea)
		}
		if len(ea) > 200 {
			t.Fatalf("esc(%q) is %d bytes", a, len(ea))
		}
		if len(a) <= 128 && unesc(ea) != a {
			t.Fatalf("unesc(esc(%q)) = %q", a, unesc(ea))
		}
		if a != b && ea == eb {
			t.Fatalf("esc(%q) == esc(%q) == %q", a, b, ea)
		}
	})
}
