package limit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ulule/limiter/v3"
)

// Report is the admin view of current limits and spend (GET /admin/usage).
type Report struct {
	At      time.Time      `json:"at"`
	Store   string         `json:"store"`
	Clients []ClientReport `json:"clients"`
	Users   []UserReport   `json:"users"`
	Budgets []BudgetReport `json:"budgets"`
}

// RateReport is one request-rate counter; Reset is when it starts over.
type RateReport struct {
	Rate      string    `json:"rate"`
	Limit     int64     `json:"limit"`
	Remaining int64     `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

// ClientReport is one configured client. Rate is nil without a client rate;
// MaxInFlight 0 means no cap.
type ClientReport struct {
	ID          string      `json:"id"`
	Rate        *RateReport `json:"rate,omitempty"`
	InFlight    int64       `json:"in_flight"`
	MaxInFlight int64       `json:"max_in_flight"`
}

// UserReport is one (client, user) seen in the last 24 hours.
// TokensPerMinute 0 means no token limit.
type UserReport struct {
	Client string      `json:"client"`
	User   string      `json:"user"`
	Rate   *RateReport `json:"rate,omitempty"`
	// TokensThisMinute counts tokens spent in the current minute plus those
	// held by calls in flight (their worst case, until they settle).
	TokensThisMinute int64 `json:"tokens_this_minute"`
	TokensPerMinute  int64 `json:"tokens_per_minute"`
}

// BudgetReport is one budget for one subject in the current period. Limits
// of 0 mean that kind is not capped; Remaining counts out reservations.
type BudgetReport struct {
	Scope           string    `json:"scope"`
	ID              string    `json:"id"`
	Subject         string    `json:"subject"`
	Period          string    `json:"period"`
	PeriodStart     time.Time `json:"period_start"`
	ResetsAt        time.Time `json:"resets_at"`
	USDLimit        float64   `json:"usd_limit"`
	USDSpent        float64   `json:"usd_spent"`
	USDReserved     float64   `json:"usd_reserved"`
	USDRemaining    float64   `json:"usd_remaining"`
	TokensLimit     int64     `json:"tokens_limit"`
	TokensSpent     int64     `json:"tokens_spent"`
	TokensReserved  int64     `json:"tokens_reserved"`
	TokensRemaining int64     `json:"tokens_remaining"`
}

func rateReport(ctx context.Context, lim *limiter.Limiter, key string) (*RateReport, error) {
	if lim == nil {
		return nil, nil
	}
	c, err := lim.Peek(ctx, key)
	if err != nil {
		return nil, err
	}
	return &RateReport{Rate: lim.Rate.Formatted, Limit: c.Limit, Remaining: c.Remaining, Reset: time.Unix(c.Reset, 0).UTC()}, nil
}

// Usage reports current rates, in-flight counts, token windows and budget
// spend per client, user and budget. It reads without counting.
func (l *Limiter) Usage(ctx context.Context) (Report, error) {
	now := l.now()
	p := l.pol.Load()
	rep := Report{At: now.UTC(), Store: l.kind, Clients: []ClientReport{}, Users: []UserReport{}, Budgets: []BudgetReport{}}
	for _, c := range p.cfg.Clients {
		mif := p.inFlight[c.ID]
		cr := ClientReport{ID: c.ID, MaxInFlight: int64(mif)}
		var err error
		if cr.Rate, err = rateReport(ctx, pick(p.clientRate, c.ID), "c:"+esc(c.ID)); err != nil {
			return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("reading client rate", err))
		}
		if mif > 0 {
			if cr.InFlight, err = l.store.slotsInUse(ctx, "f:"+esc(c.ID)); err != nil {
				return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("reading in-flight count", err))
			}
		}
		rep.Clients = append(rep.Clients, cr)
	}
	users, err := l.store.seenUsers(ctx, now.Add(-usersFor))
	if err != nil {
		return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("listing users", err))
	}
	for _, m := range users {
		ec, eu, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		ur := UserReport{Client: unesc(ec), User: unesc(eu), TokensPerMinute: p.cfg.UserTokensPerMinute}
		if ur.Rate, err = rateReport(ctx, pick(p.userRate, ur.Client), "u:"+m); err != nil {
			return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("reading user rate", err))
		}
		if ur.TokensPerMinute > 0 {
			key, _ := tokenWindow(ur.User, now)
			if ur.TokensThisMinute, err = l.store.tokens(ctx, key); err != nil {
				return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("reading token window", err))
			}
		}
		rep.Users = append(rep.Users, ur)
	}
	states, err := l.store.buckets(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("reporting usage: %w", storeUnavailable("reading budgets", err))
	}
	for _, b := range p.cfg.Budgets {
		start, end, stamp := period(b.Period, now)
		prefix := "b:" + scopeLetter[b.Scope] + ":" + string(b.Period[:1]) + ":" + stamp + ":"
		subjects := map[string]bool{}
		switch {
		case b.Scope == ScopeGlobal:
			subjects["*"] = true
		case b.ID != "":
			subjects[b.ID] = true
		default:
			for k := range states {
				if s, ok := strings.CutPrefix(k, prefix); ok {
					subjects[unesc(s)] = true
				}
			}
		}
		for s := range subjects {
			st := states[prefix+esc(s)]
			br := BudgetReport{
				Scope: string(b.Scope), ID: b.ID, Subject: s, Period: string(b.Period),
				PeriodStart: start, ResetsAt: end,
				USDLimit: b.USD, USDSpent: nanoToUSD(st.SpentUSD), USDReserved: nanoToUSD(st.ReservedUSD),
				TokensLimit: b.Tokens, TokensSpent: st.SpentTokens, TokensReserved: st.ReservedTokens,
			}
			if b.USD > 0 {
				br.USDRemaining = max(0, nanoToUSD(usdToNano(b.USD)-st.SpentUSD-st.ReservedUSD))
			}
			if b.Tokens > 0 {
				br.TokensRemaining = max(0, b.Tokens-st.SpentTokens-st.ReservedTokens)
			}
			rep.Budgets = append(rep.Budgets, br)
		}
	}
	sort.SliceStable(rep.Budgets, func(i, j int) bool {
		a, b := rep.Budgets[i], rep.Budgets[j]
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		if a.Period != b.Period {
			return a.Period < b.Period
		}
		return a.Subject < b.Subject
	})
	return rep, nil
}
