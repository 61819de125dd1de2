package limit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// periodGrace keeps a finished period's counters a little longer, so a
// request settled just after midnight is not lost and clocks may drift.
const periodGrace = time.Hour

// period returns the UTC period holding now: its start, end and stamp.
func period(kind Period, now time.Time) (start, end time.Time, stamp string) {
	now = now.UTC()
	if kind == PeriodDay {
		start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1), start.Format("20060102")
	}
	start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0), start.Format("200601")
}

var scopeLetter = map[Scope]string{ScopeGlobal: "g", ScopeClient: "c", ScopeUser: "u"}

// bucketSpec is a bucket with the budgets that share it.
type bucketSpec struct {
	bucket
	scope         Scope
	subject       string
	period        Period
	start, resets time.Time
	budgets       []int // indexes into cfg.Budgets
}

// bucketsFor lists the budget buckets id counts against at now, one per
// distinct (scope, subject, period), each with the tightest limits of the
// budgets that share it.
func (p *policy) bucketsFor(id Identity, now time.Time) []bucketSpec {
	var out []bucketSpec
	for i, b := range p.cfg.Budgets {
		var subject string
		switch b.Scope {
		case ScopeGlobal:
			subject = "*"
		case ScopeClient:
			if b.ID != "" && b.ID != id.Client {
				continue
			}
			subject = id.Client
		case ScopeUser:
			if id.User == "" || (b.ID != "" && b.ID != id.User) {
				continue
			}
			subject = id.User
		default:
			continue
		}
		start, end, stamp := period(b.Period, now)
		key := "b:" + scopeLetter[b.Scope] + ":" + string(b.Period[:1]) + ":" + stamp + ":" + esc(subject)
		j := -1
		for k := range out {
			if out[k].key == key {
				j = k
			}
		}
		if j < 0 {
			out = append(out, bucketSpec{
				bucket: bucket{key: key, expireAt: end.Add(periodGrace), ttl: end.Add(periodGrace).Sub(now)},
				scope:  b.Scope, subject: subject, period: b.Period, start: start, resets: end,
			})
			j = len(out) - 1
		}
		s := &out[j]
		s.budgets = append(s.budgets, i)
		if u := usdToNano(b.USD); u > 0 && (s.usdLimit == 0 || u < s.usdLimit) {
			s.usdLimit = u
		}
		if b.Tokens > 0 && (s.tokLimit == 0 || b.Tokens < s.tokLimit) {
			s.tokLimit = b.Tokens
		}
	}
	return out
}

// Cost is the USD cost of u at model's prices (see DefaultPricing for
// models Config.Pricing does not name).
func (l *Limiter) Cost(model string, u Usage) float64 {
	return nanoToUSD(l.pol.Load().prices.lookup(model).nanoCost(u))
}

// Reservation is budget held for one upstream call. Exactly one of Settle or
// Release should follow; both are idempotent and the first wins.
type Reservation struct {
	l        *Limiter
	pol      *policy // the policy it was reserved under; Settle uses it too
	id       Identity
	resID    string
	specs    []bucketSpec
	usd, tok int64 // held (0 when nothing was held)
	held     bool  // the store holds it (false: no budget applies, or fail_open)
	// tpmKey and tpmHeld are the token window and the tokens held in it
	// for limits.user_tokens_per_minute ("" when none).
	tpmKey  string
	tpmHeld int64

	mu      sync.Mutex
	done    bool
	costUSD float64
	err     error
}

// Reserve holds the worst-case cost of a call — estInputTokens priced at the
// dearer of input and cache-write prices plus maxOutputTokens of output — in
// every budget id counts against, or refuses with a fault.BudgetExhausted naming the
// first budget it does not fit in (scope, id, period, spend, reset time).
// estInputTokens must be an upper bound (a byte count of the prompt is one)
// for the guarantee that no budget is exceeded to hold: Settle always
// records the real usage, even above the reservation.
func (l *Limiter) Reserve(ctx context.Context, id Identity, model string, estInputTokens, maxOutputTokens int64) (*Reservation, error) {
	if id.Client == "" {
		return nil, errors.New("reserving budget: identity has no client")
	}
	if estInputTokens < 0 || maxOutputTokens < 0 {
		return nil, fmt.Errorf("reserving budget: negative token count (input %d, max output %d)", estInputTokens, maxOutputTokens)
	}
	now := l.now()
	p := l.pol.Load()
	r := &Reservation{l: l, pol: p, id: id, resID: newID(), specs: p.bucketsFor(id, now)}
	tok := satAdd(estInputTokens, maxOutputTokens)
	if err := l.reserveTokens(ctx, p, r, tok); err != nil {
		return nil, err
	}
	if len(r.specs) == 0 {
		return r, nil
	}
	usd := p.prices.lookup(model).worstCase(estInputTokens, maxOutputTokens)
	bs := make([]bucket, len(r.specs))
	for i := range r.specs {
		bs[i] = r.specs[i].bucket
	}
	refused, st, err := l.store.reserve(ctx, bs, r.resID, usd, tok, l.lease)
	if err != nil {
		if err := l.storeErr("reserving budget", id, err); err != nil {
			r.releaseTokens(ctx)
			return nil, err
		}
		return r, nil
	}
	if refused >= 0 {
		r.releaseTokens(ctx)
		spec := r.specs[refused]
		if tooBig(spec, usd, tok) {
			return nil, l.tooBigRefusal(spec, usd, tok)
		}
		if (spec.usdLimit > 0 && st.SpentUSD+usd > spec.usdLimit) || (spec.tokLimit > 0 && st.SpentTokens+tok > spec.tokLimit) {
			// Settled spend alone leaves no room: the budget is used up.
			l.checkAlerts(p, spec, st, now, true)
		}
		return nil, l.budgetRefusal(spec, st, usd, tok, now)
	}
	r.usd, r.tok, r.held = usd, tok, true
	if l.kind == "redis" {
		ls := make([]leased, len(bs))
		for i, b := range bs {
			ls[i] = leased{key: b.key, id: r.resID}
		}
		l.liveRes.Store(r, ls)
	}
	return r, nil
}

// describe names a bucket for people: `client "acme" monthly budget`.
func (s *bucketSpec) describe() string {
	per := map[Period]string{PeriodDay: "daily", PeriodMonth: "monthly"}[s.period]
	switch s.scope {
	case ScopeGlobal:
		return "global " + per + " budget"
	default:
		return fmt.Sprintf("%s %q %s budget", s.scope, s.subject, per)
	}
}

// tooBig reports whether the worst case alone exceeds a budget, so that
// waiting cannot help.
func tooBig(s bucketSpec, usd, tok int64) bool {
	return (s.usdLimit > 0 && usd > s.usdLimit) || (s.tokLimit > 0 && tok > s.tokLimit)
}

// tooBigRefusal is the fault.OverBudget for a call whose worst case is more than a whole
// budget: the caller must lower max_tokens (or the prompt).
func (l *Limiter) tooBigRefusal(s bucketSpec, usd, tok int64) *fault.Error {
	var what string
	if s.usdLimit > 0 && usd > s.usdLimit {
		what = fmt.Sprintf("this call may cost up to $%.4f but the %s is $%.2f", nanoToUSD(usd), s.describe(), nanoToUSD(s.usdLimit))
	} else {
		what = fmt.Sprintf("this call may use up to %d tokens but the %s is %d", tok, s.describe(), s.tokLimit)
	}
	return fault.New(fault.OverBudget, "request too large for its budget: %s; lower max_tokens", what)
}

// budgetRefusal is the fault.BudgetExhausted for a budget the worst case does not fit in. It
// names the budget (scope, id, period), what is spent and held, and the
// UTC time it resets; retry-after is the time until then.
func (l *Limiter) budgetRefusal(s bucketSpec, st bucketState, usd, tok int64, now time.Time) *fault.Error {
	var parts []string
	if s.usdLimit > 0 && st.SpentUSD+st.ReservedUSD+usd > s.usdLimit {
		parts = append(parts, fmt.Sprintf("$%.4f spent and $%.4f held by calls in flight of $%.2f; this call may cost up to $%.4f",
			nanoToUSD(st.SpentUSD), nanoToUSD(st.ReservedUSD), nanoToUSD(s.usdLimit), nanoToUSD(usd)))
	}
	if s.tokLimit > 0 && st.SpentTokens+st.ReservedTokens+tok > s.tokLimit {
		parts = append(parts, fmt.Sprintf("%d tokens used and %d held of %d; this call may use up to %d",
			st.SpentTokens, st.ReservedTokens, s.tokLimit, tok))
	}
	msg := fmt.Sprintf("budget exhausted: %s (%s) is used up; it resets at %s",
		s.describe(), strings.Join(parts, "; "), s.resets.Format(time.RFC3339))
	return refusal(fault.BudgetExhausted, msg, s.resets.Sub(now), nil)
}

// Settle records the real usage of the call against every budget and the
// user's token window, drops the reservation, fires due alerts and returns
// the cost in USD. It is idempotent: later calls return the first result.
func (r *Reservation) Settle(ctx context.Context, model string, u Usage) (float64, error) {
	if r == nil {
		return 0, errors.New("settling budget: nil reservation")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return r.costUSD, r.err
	}
	r.done = true
	l := r.l
	l.liveRes.Delete(r)
	nano := r.pol.prices.lookup(model).nanoCost(u)
	tok := u.Tokens()
	r.costUSD = nanoToUSD(nano)
	var errs []error
	if err := r.settleTokens(ctx, tok); err != nil {
		errs = append(errs, fmt.Errorf("recording token usage: %w", err))
	}
	if len(r.specs) > 0 {
		if r.held && (nano > r.usd || tok > r.tok) {
			l.log.Warn("limit: usage exceeded its reservation (input estimate too low)",
				"client", r.id.Client, "user", r.id.User, "model", model,
				"reserved_usd", nanoToUSD(r.usd), "cost_usd", r.costUSD, "reserved_tokens", r.tok, "tokens", tok)
		}
		bs := make([]bucket, len(r.specs))
		for i := range r.specs {
			bs[i] = r.specs[i].bucket
		}
		sts, err := l.store.settle(ctx, bs, r.resID, nano, tok)
		if err != nil {
			errs = append(errs, fmt.Errorf("recording spend: %w", err))
		}
		if len(sts) == len(r.specs) {
			now := l.now()
			for i := range r.specs {
				l.checkAlerts(r.pol, r.specs[i], sts[i], now, false)
			}
		}
	}
	if len(errs) > 0 {
		r.err = fmt.Errorf("settling budget: %w", errors.Join(errs...))
	}
	return r.costUSD, r.err
}

// Release returns the reserved budget unspent, for a call that failed
// before using tokens (a call that used some should Settle them instead).
// It is idempotent, a no-op after Settle, and safe on nil.
func (r *Reservation) Release(ctx context.Context) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.l.liveRes.Delete(r)
	r.releaseTokens(ctx)
	if !r.held {
		return
	}
	bs := make([]bucket, len(r.specs))
	for i := range r.specs {
		bs[i] = r.specs[i].bucket
	}
	if _, err := r.l.store.settle(ctx, bs, r.resID, 0, 0); err != nil {
		// In Redis the reservation's lease runs out on its own.
		r.l.log.Warn("limit: releasing reservation failed", "client", r.id.Client, "user", r.id.User, "err", err)
	}
}

// releaseTokens returns the tokens held in the per-minute window.
func (r *Reservation) releaseTokens(ctx context.Context) {
	if r.tpmKey == "" {
		return
	}
	if _, err := r.l.store.addTokens(ctx, r.tpmKey, -r.tpmHeld, 2*time.Minute); err != nil {
		r.l.log.Warn("limit: releasing reserved tokens failed", "user", r.id.User, "err", err)
	}
	r.tpmKey, r.tpmHeld = "", 0
}

// Alert is the JSON posted to a budget's webhook when spend crosses one of
// its alert thresholds (once per threshold per period).
type Alert struct {
	Type        string    `json:"type"` // "budget_alert"
	Environment string    `json:"environment"`
	Scope       string    `json:"scope"`
	ID          string    `json:"id"` // the budget's id ("" = each)
	Subject     string    `json:"subject"`
	Period      string    `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	ResetsAt    time.Time `json:"resets_at"`
	Threshold   float64   `json:"threshold"`
	Fraction    float64   `json:"fraction"`
	Exhausted   bool      `json:"exhausted"`
	USDLimit    float64   `json:"usd_limit,omitempty"`
	USDSpent    float64   `json:"usd_spent"`
	TokensLimit int64     `json:"tokens_limit,omitempty"`
	TokensSpent int64     `json:"tokens_spent"`
}

// checkAlerts fires the thresholds spend has reached, once per threshold
// per period (the store dedupes across instances and restarts). exhausted
// (a call refused because settled spend leaves it no room) fires every
// threshold not fired yet.
func (l *Limiter) checkAlerts(p *policy, s bucketSpec, st bucketState, now time.Time, exhausted bool) {
	for _, bi := range s.budgets {
		b := p.cfg.Budgets[bi]
		if len(b.Alerts) == 0 {
			continue
		}
		frac := 0.0
		if b.USD > 0 {
			frac = max(frac, nanoToUSD(st.SpentUSD)/b.USD)
		}
		if b.Tokens > 0 {
			frac = max(frac, float64(st.SpentTokens)/float64(b.Tokens))
		}
		for _, th := range b.Alerts { // sorted by newPolicy
			if frac < th && !exhausted {
				break
			}
			key := "a:" + s.key + ":" + p.budgetFP[bi] + ":" + strconv.FormatFloat(th, 'g', -1, 64)
			if _, ok := l.fired.Load(key); ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			first, err := l.store.markOnce(ctx, key, s.expireAt, s.expireAt.Sub(now))
			cancel()
			if err != nil {
				// Redis: unknown whether it fired, try again next time.
				// Memory: marked but not persisted; fire now.
				l.log.Warn("limit: recording budget alert failed", "key", key, "err", err)
				if !first {
					continue
				}
			}
			l.fired.Store(key, s.expireAt)
			if !first {
				continue
			}
			l.fire(b, s, st, th, frac, exhausted)
		}
	}
}

func (l *Limiter) fire(b Budget, s bucketSpec, st bucketState, th, frac float64, exhausted bool) {
	a := Alert{
		Type: "budget_alert", Environment: l.env,
		Scope: string(b.Scope), ID: b.ID, Subject: s.subject, Period: string(b.Period),
		PeriodStart: s.start, ResetsAt: s.resets,
		Threshold: th, Fraction: frac, Exhausted: exhausted,
		USDLimit: b.USD, USDSpent: nanoToUSD(st.SpentUSD),
		TokensLimit: b.Tokens, TokensSpent: st.SpentTokens,
	}
	l.log.Warn("budget alert", "budget", s.describe(), "threshold", th, "fraction", frac, "exhausted", exhausted,
		"usd_spent", a.USDSpent, "usd_limit", b.USD, "tokens_spent", st.SpentTokens, "tokens_limit", b.Tokens,
		"resets_at", s.resets)
	if b.Webhook == "" {
		return
	}
	body, err := json.Marshal(a)
	if err != nil {
		l.log.Error("limit: encoding budget alert", "err", err)
		return
	}
	l.amu.Lock()
	if l.closing {
		l.amu.Unlock()
		l.log.Warn("limit: not posting budget alert: limiter closing", "webhook", webhookHost(b.Webhook))
		return
	}
	l.wg.Add(1)
	l.amu.Unlock()
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.Webhook, bytes.NewReader(body))
		if err != nil {
			l.log.Error("limit: budget alert webhook", "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "moat-budget-alert")
		resp, err := l.http.Do(req)
		if err != nil {
			l.log.Error("limit: posting budget alert failed", "webhook", webhookHost(b.Webhook), "err", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			l.log.Error("limit: budget alert webhook answered an error", "webhook", webhookHost(b.Webhook), "status", resp.StatusCode)
		}
	}()
}

// webhookHost is what logs show of a webhook URL: its scheme and host. The
// path or query of a webhook often is the credential.
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}
