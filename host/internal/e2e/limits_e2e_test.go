package e2e

import (
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// Prices that make costs easy to check: $1000 per million tokens is $0.001
// a token (a cache write, and so the worst-case input price, is 1.25x).
const limitPricing = `
[pricing."claude-sonnet-5-5"]
input = 1000.0
output = 1000.0
`

// Redis databases owned by these tests (moat uses its default key prefix;
// the limit package's own tests use database 0 with per-test prefixes).
const (
	dbExactAdmission = 10
	dbShareRate      = 11
	dbShareBudget    = 12
)

// check429 checks a rate-limit refusal: status, error type, retry-after
// and message.
func check429(t *testing.T, r reply, msgPart string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.errType() != "rate_limit_error" {
		t.Fatalf("want 429 rate_limit_error, got %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("retry-after")); err != nil || ra < 1 {
		t.Errorf("retry-after %q on a 429", r.header.Get("retry-after"))
	}
	if !strings.Contains(r.errMsg(), msgPart) {
		t.Errorf("message %q does not say %q", r.errMsg(), msgPart)
	}
}

// TestLimitsExactAdmission: 200 concurrent requests through moat against
// a client rate of N admit exactly N; the rest get 429 rate_limit_error
// with retry-after and X-RateLimit-* headers. Memory and Redis stores.
func TestLimitsExactAdmission(t *testing.T) {
	const n, total = 37, 200
	stores := []struct{ name, toml string }{
		{"memory", "store = \"memory\""},
	}
	if addr := testRedis(t); addr != "" {
		stores = append(stores, struct{ name, toml string }{"redis", fmt.Sprintf("store = \"redis\"\nredis_url = %q", redisDB(t, addr, dbExactAdmission))})
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := start(t, envOpts{client: fmt.Sprintf("rate = \"%d-M\"", n), extra: "\n[limits]\n" + st.toml + "\n"})
			rs := burst(t, total, func(int) string { return e.url }, messageBody("hi", 16, false), func(int) map[string][]string { return e.auth() })
			got := countStatus(rs)
			if got[200] != n || got[429] != total-n {
				t.Fatalf("statuses %v, want exactly %d x 200 and %d x 429", got, n, total-n)
			}
			if c := e.si.RequestCount(); c != n {
				t.Errorf("the stand-in saw %d calls, want %d", c, n)
			}
			remaining := map[string]bool{}
			now := time.Now().Unix()
			for _, r := range rs {
				if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(n) {
					t.Fatalf("X-RateLimit-Limit = %q on a %d", r.header.Get("X-RateLimit-Limit"), r.status)
				}
				reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
				if err != nil || reset < now || reset > now+61 {
					t.Errorf("X-RateLimit-Reset = %q", r.header.Get("X-RateLimit-Reset"))
				}
				if r.status == 200 {
					remaining[r.header.Get("X-RateLimit-Remaining")] = true
					continue
				}
				check429(t, r, "rate limit exceeded")
				if r.header.Get("X-RateLimit-Remaining") != "0" {
					t.Errorf("X-RateLimit-Remaining = %q on a 429", r.header.Get("X-RateLimit-Remaining"))
				}
			}
			// Each admitted request got its own count: remaining n-1 .. 0.
			if len(remaining) != n || !remaining["0"] || !remaining[strconv.Itoa(n-1)] {
				t.Errorf("admitted requests saw remaining values %v, want each of 0..%d once", keys(remaining), n-1)
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestLimitsSharedAcrossInstances: two moat instances on one Redis share
// one client rate.
func TestLimitsSharedAcrossInstances(t *testing.T) {
	addr := testRedis(t)
	const n, total = 41, 200
	lim := fmt.Sprintf("\n[limits]\nstore = \"redis\"\nredis_url = %q\n", redisDB(t, addr, dbShareRate))
	a := start(t, envOpts{client: fmt.Sprintf("rate = \"%d-M\"", n), extra: lim})
	b := start(t, envOpts{client: fmt.Sprintf("rate = \"%d-M\"", n), extra: lim})
	envs := []*env{a, b}
	rs := burst(t, total, func(i int) string { return envs[i%2].url }, messageBody("hi", 16, false), func(i int) map[string][]string { return envs[i%2].auth() })
	got := countStatus(rs)
	if got[200] != n || got[429] != total-n {
		t.Fatalf("statuses %v, want exactly %d x 200 across both instances", got, n)
	}
	if a.si.RequestCount() == 0 || b.si.RequestCount() == 0 || a.si.RequestCount()+b.si.RequestCount() != n {
		t.Errorf("upstream calls %d + %d, want %d shared by both", a.si.RequestCount(), b.si.RequestCount(), n)
	}
	for _, r := range rs {
		if r.status == 429 {
			check429(t, r, fmt.Sprintf("allows %d requests per minute", n))
		}
	}
	// Both report the same shared counter.
	for _, e := range envs {
		rep := e.usage(t)
		if rep.Store != "redis" || len(rep.Clients) != 1 || rep.Clients[0].Rate == nil || rep.Clients[0].Rate.Remaining != 0 {
			t.Errorf("/admin/usage = %+v, want the shared rate used up", rep)
		}
	}
}

// TestLimitsBudgetNeverExceeded: 200 racing requests split over two
// instances sharing one Redis budget, each really costing less than its
// reservation, never push spend past the budget; the spend /admin/usage
// shows is exactly the real cost of the admitted calls.
func TestLimitsBudgetNeverExceeded(t *testing.T) {
	addr := testRedis(t)
	const budget = 2.0
	// The prompt is 300 bytes: an input estimate of 101 tokens. Worst case
	// 101*0.00125 + 100*0.001 = $0.22625; real use 80 in + 60 out = $0.14.
	const reserve, real = 0.22625, 0.14
	prompt := strings.Repeat("spend ", 50)
	cfg := fmt.Sprintf("\n[limits]\nstore = \"redis\"\nredis_url = %q\n%s\n[[budgets]]\nscope = \"client\"\nid = \"app\"\nusd = %v\n", redisDB(t, addr, dbShareBudget), limitPricing, budget)
	a := start(t, envOpts{extra: cfg})
	b := start(t, envOpts{extra: cfg})
	envs := []*env{a, b}
	for _, e := range envs {
		e.si.SetUsage(&standin.Usage{InputTokens: 80, OutputTokens: 60})
		// Calls take a while, so reservations race.
		if err := e.si.SetFault(standin.Fault{Kind: standin.FaultSlowFirstByte, Delay: 250 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	body := messageBody(prompt, 100, false)
	fire := func(n int) []reply {
		return burst(t, n, func(i int) string { return envs[i%2].url }, body, func(i int) map[string][]string { return envs[i%2].auth() })
	}
	okTotal := 0
	checkRefusals := func(rs []reply) {
		for _, r := range rs {
			if r.status == 200 {
				okTotal++
				continue
			}
			check429(t, r, `budget exhausted: client "app" monthly budget`)
		}
	}
	// Watch the calls in flight upstream: never more worst cases than fit.
	budgetUSD := budget
	maxConcurrent := int(budgetUSD / reserve) // 8
	var peak atomic.Int64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if n := int64(a.si.InFlight() + b.si.InFlight()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	first := fire(200)
	got := countStatus(first)
	if got[200] < 1 || got[200]+got[429] != 200 {
		t.Fatalf("first race: %v", got)
	}
	checkRefusals(first)
	// Race on until settled spend leaves no room for another worst case.
	for round := 0; round < 20; round++ {
		rs := fire(20)
		checkRefusals(rs)
		if countStatus(rs)[200] == 0 {
			break
		}
	}
	close(stopWatch)
	<-watched
	if p := peak.Load(); p > int64(maxConcurrent) || p < 2 {
		t.Errorf("peak calls in flight upstream %d; want 2..%d (the worst cases that fit in $%v)", p, maxConcurrent, budget)
	}
	rep := a.usage(t)
	line, ok := rep.budget("client", "app")
	if !ok {
		t.Fatalf("no client budget line in %+v", rep)
	}
	t.Logf("admitted %d calls, peak %d in flight, spent $%.4f of $%.2f", okTotal, peak.Load(), line.USDSpent, budget)
	if line.USDSpent > budget+1e-9 {
		t.Fatalf("budget exceeded: spent $%v of $%v", line.USDSpent, budget)
	}
	if want := float64(okTotal) * real; math.Abs(line.USDSpent-want) > 1e-6 {
		t.Errorf("spent $%v, want %d calls x $%v = $%v (real usage, not the reservation)", line.USDSpent, okTotal, real, want)
	}
	if budget-line.USDSpent >= reserve {
		t.Errorf("spent $%v: a worst case of $%v still fits, yet calls were refused", line.USDSpent, reserve)
	}
	if line.USDReserved != 0 || math.Abs(line.USDRemaining-(budget-line.USDSpent)) > 1e-6 {
		t.Errorf("after the race: reserved $%v, remaining $%v", line.USDReserved, line.USDRemaining)
	}
	if line2, _ := b.usage(t).budget("client", "app"); line2.USDSpent != line.USDSpent {
		t.Errorf("the instances disagree on spend: $%v vs $%v", line.USDSpent, line2.USDSpent)
	}
}

// userHdr is a request from the trusted client naming an end user.
func (e *env) userHdr(user string) map[string][]string {
	h := e.auth()
	h["X-End-User"] = []string{user}
	return h
}

func (e *env) post(hdr map[string][]string, maxTokens int) reply {
	s, h, b := e.raw(http.MethodPost, "/v1/messages", messageBody("hi", maxTokens, false), hdr)
	return reply{status: s, header: h, body: b}
}

// TestLimitsPerUser: a trusted client names users with its user_header;
// each user has its own rate, token window and budget, and /admin/usage
// shows per-client and per-user spend and what remains.
func TestLimitsPerUser(t *testing.T) {
	otherKey, otherBlock := extraClient(t, "untrusted", "")
	e := start(t, envOpts{
		client: "trusted = true\nuser_header = \"X-End-User\"\nuser_rate = \"3-M\"",
		extra: otherBlock + limitPricing + `
[limits]
user_tokens_per_minute = 1000000

[[budgets]]
scope = "user"
period = "day"
usd = 0.5

[[budgets]]
scope = "client"
id = "app"
usd = 10.0
`,
	})
	e.si.SetUsage(&standin.Usage{InputTokens: 1, OutputTokens: 99}) // $0.10 a call, worst case $0.10125

	t.Run("user rate", func(t *testing.T) {
		var rs []reply
		for i := 0; i < 5; i++ {
			rs = append(rs, e.post(e.userHdr("alice"), 100))
		}
		for i, r := range rs {
			if i < 3 && r.status != 200 {
				t.Fatalf("alice call %d: %d %s", i, r.status, r.body)
			}
			if i >= 3 {
				check429(t, r, `user "alice" allows 3 requests per minute`)
			}
		}
		if r := e.post(e.userHdr("bob"), 100); r.status != 200 {
			t.Errorf("bob is limited by alice's rate: %d %s", r.status, r.body)
		}
	})
	t.Run("untrusted client may not name users", func(t *testing.T) {
		h := keyHeaders(otherKey)
		h["X-End-User"] = []string{"alice"}
		s, _, b := e.raw(http.MethodPost, "/v1/messages", messageBody("hi", 20, false), h)
		if s != http.StatusForbidden {
			t.Errorf("status %d %s", s, b)
		}
	})
	t.Run("admin usage per client and user", func(t *testing.T) {
		rep := e.usage(t)
		users := map[string]bool{}
		for _, u := range rep.Users {
			if u.Client == "app" {
				users[u.User] = true
			}
		}
		for _, u := range []string{"alice", "bob"} {
			if !users[u] {
				t.Errorf("/admin/usage lists no user %q: %+v", u, rep.Users)
			}
		}
		alice, ok := rep.budget("user", "alice")
		if !ok || !near(alice.USDSpent, 0.30) || !near(alice.USDRemaining, 0.20) || alice.USDLimit != 0.5 || alice.Period != "day" {
			t.Errorf("alice's budget line %+v, want $0.30 spent, $0.20 left of $0.50", alice)
		}
		bob, ok := rep.budget("user", "bob")
		if !ok || !near(bob.USDSpent, 0.10) {
			t.Errorf("bob's budget line %+v, want $0.10 spent", bob)
		}
		app, ok := rep.budget("client", "app")
		if !ok || !near(app.USDSpent, 0.40) || !near(app.USDRemaining, 9.60) {
			t.Errorf("client budget line %+v, want $0.40 spent (4 calls), $9.60 left", app)
		}
	})
}

// TestLimitsUserBudgetRefusal: the refusal names the user budget that ran
// out, and other users are unaffected.
func TestLimitsUserBudgetRefusal(t *testing.T) {
	e := start(t, envOpts{
		client: "trusted = true\nuser_header = \"X-End-User\"",
		extra: limitPricing + `
[[budgets]]
scope = "user"
period = "day"
usd = 0.35
`,
	})
	e.si.SetUsage(&standin.Usage{InputTokens: 1, OutputTokens: 99}) // $0.10 a call, worst case $0.10125
	ok := 0
	var last reply
	for i := 0; i < 10; i++ {
		last = e.post(e.userHdr("dave"), 100)
		if last.status != 200 {
			break
		}
		ok++
	}
	// Worst case $0.10125: after three calls ($0.30) another does not
	// fit in $0.35.
	if ok != 3 {
		t.Fatalf("dave got %d calls before a refusal, want 3", ok)
	}
	check429(t, last, `budget exhausted: user "dave" daily budget`)
	if !strings.Contains(last.errMsg(), "resets at") {
		t.Errorf("refusal does not say when the budget resets: %s", last.errMsg())
	}
	if r := e.post(e.userHdr("erin"), 100); r.status != 200 {
		t.Errorf("erin is refused by dave's budget: %d %s", r.status, r.body)
	}
	// A call whose worst case is more than the whole budget is a 400.
	r := e.post(e.userHdr("erin"), 1000)
	if r.status != http.StatusBadRequest || r.errType() != "invalid_request_error" || !strings.Contains(r.errMsg(), `user "erin" daily budget`) {
		t.Errorf("oversized call: %d %s", r.status, r.body)
	}
}

// TestLimitsTokensPerMinute: a user's input+output tokens per minute.
func TestLimitsTokensPerMinute(t *testing.T) {
	e := start(t, envOpts{
		client: "trusted = true\nuser_header = \"X-End-User\"",
		extra:  "\n[limits]\nuser_tokens_per_minute = 300\n",
	})
	// 100 tokens a call; each call first reserves its worst case
	// (estimated input + max_tokens = 101), then is charged what it used.
	e.si.SetUsage(&standin.Usage{InputTokens: 50, OutputTokens: 50})
	// The window is the UTC minute: keep the three calls inside one.
	if s := time.Now().UTC().Second(); s >= 55 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	for i := 0; i < 2; i++ {
		if r := e.post(e.userHdr("frank"), 100); r.status != 200 {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	check429(t, e.post(e.userHdr("frank"), 100), `token rate limit exceeded: user "frank" has 200 of 300 input+output tokens per minute in use or spent, and this request may use 101`)
	if r := e.post(e.userHdr("grace"), 100); r.status != 200 {
		t.Errorf("grace is limited by frank's tokens: %d %s", r.status, r.body)
	}
	rep := e.usage(t)
	for _, u := range rep.Users {
		if u.User == "frank" && (u.TokensThisMinute != 200 || u.TokensPerMinute != 300) {
			t.Errorf("/admin/usage for frank: %+v", u)
		}
	}
}

// TestLimitsMaxInFlight: a client's in-flight cap refuses the excess at
// once and frees slots when calls end.
func TestLimitsMaxInFlight(t *testing.T) {
	e := start(t, envOpts{client: "max_in_flight = 2"})
	if err := e.si.SetFault(standin.Fault{Kind: standin.FaultSlowFirstByte, Delay: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	rs := burst(t, 8, func(int) string { return e.url }, messageBody("hi", 16, false), func(int) map[string][]string { return e.auth() })
	got := countStatus(rs)
	if got[200] != 2 || got[429] != 6 {
		t.Fatalf("statuses %v, want 2 x 200 and 6 x 429", got)
	}
	for _, r := range rs {
		if r.status == 429 {
			check429(t, r, `too many requests in flight: client "app" allows 2 at once`)
		}
	}
	if el := time.Since(t0); el < 400*time.Millisecond {
		t.Errorf("burst took %v: the admitted calls did not wait for the slow upstream", el)
	}
	e.si.ClearFault()
	for i := 0; i < 3; i++ {
		if r := e.post(e.auth(), 16); r.status != 200 {
			t.Fatalf("slots were not freed: %d %s", r.status, r.body)
		}
	}
	if rep := e.usage(t); rep.Clients[0].InFlight != 0 || rep.Clients[0].MaxInFlight != 2 {
		t.Errorf("/admin/usage clients: %+v", rep.Clients)
	}
}

// TestLimitsSpendSurvivesRestart: with the memory store, the month's spend
// is kept in the state file across a restart.
func TestLimitsSpendSurvivesRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "moat-state.db")
	cfg := fmt.Sprintf("\n[limits]\nstore = \"memory\"\nstate_path = %q\n%s\n[[budgets]]\nscope = \"client\"\nid = \"app\"\nusd = 0.5\n", state, limitPricing)
	e1 := start(t, envOpts{extra: cfg})
	e1.si.SetUsage(&standin.Usage{InputTokens: 1, OutputTokens: 99}) // $0.10 a call, worst case $0.10125
	for i := 0; i < 3; i++ {
		if r := e1.post(e1.auth(), 100); r.status != 200 {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	if s := budgetSpent(t, e1, "client", "app"); !near(s, 0.30) {
		t.Fatalf("spent $%v before restart", s)
	}
	e1.stop()

	e2 := start(t, envOpts{extra: cfg})
	e2.si.SetUsage(&standin.Usage{InputTokens: 1, OutputTokens: 99})
	if s := budgetSpent(t, e2, "client", "app"); !near(s, 0.30) {
		t.Fatalf("after restart spent = $%v, want the $0.30 spent before it", s)
	}
	// $0.30 spent: one more worst case ($0.10125) fits in $0.50, a second
	// does not.
	ok := 0
	var last reply
	for i := 0; i < 10; i++ {
		last = e2.post(e2.auth(), 100)
		if last.status != 200 {
			break
		}
		ok++
	}
	if ok != 1 {
		t.Errorf("after restart %d calls passed, want 1 (the budget remembers $0.30)", ok)
	}
	check429(t, last, `budget exhausted: client "app" monthly budget`)
	if s := budgetSpent(t, e2, "client", "app"); !near(s, 0.40) {
		t.Errorf("final spend $%v, want $0.40", s)
	}
}

// TestLimitsRedisDown: Redis dying mid-run refuses calls with 503 by
// default, and admits them with fail_open = true.
func TestLimitsRedisDown(t *testing.T) {
	testRedis(t) // CI must have redis; this test runs its own server
	addr, stopRedis := ownRedis(t)
	lim := func(failOpen bool) string {
		return fmt.Sprintf("\n[limits]\nstore = \"redis\"\nredis_url = \"redis://%s/0\"\nfail_open = %v\n%s\n[[budgets]]\nscope = \"global\"\nusd = 100.0\n", addr, failOpen, limitPricing)
	}
	closed := start(t, envOpts{client: "rate = \"1000-M\"", extra: lim(false)})
	open := start(t, envOpts{client: "rate = \"1000-M\"", extra: lim(true)})
	for _, e := range []*env{closed, open} {
		if r := e.post(e.auth(), 16); r.status != 200 {
			t.Fatalf("with redis up: %d %s", r.status, r.body)
		}
	}
	stopRedis()
	before := closed.si.RequestCount()
	r := closed.post(closed.auth(), 16)
	if r.status != http.StatusServiceUnavailable || r.errType() != "api_error" || !strings.Contains(r.errMsg(), "rate-limit store unavailable") {
		t.Errorf("fail-closed moat with redis down: %d %s", r.status, r.body)
	}
	if r.header.Get("retry-after") == "" {
		t.Errorf("503 without retry-after")
	}
	if closed.si.RequestCount() != before {
		t.Errorf("a refused call reached the upstream")
	}
	for i := 0; i < 3; i++ {
		if r := open.post(open.auth(), 16); r.status != 200 {
			t.Errorf("fail-open moat with redis down: %d %s", r.status, r.body)
		}
	}
	lines := closed.auditLines()
	if last := lines[len(lines)-1]; !strings.Contains(last, `"status":503`) {
		t.Errorf("the refusal is not audited: %s", last)
	}
}
