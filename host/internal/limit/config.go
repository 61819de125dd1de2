package limit

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Config is what a Limiter enforces and where it keeps its counts. The
// zero value limits nothing and keeps every count in memory only.
type Config struct {
	// Store is where counts, slots, reservations and spend live; only
	// New reads it (Reconfigure refuses a change).
	Store Store
	// ClientRate and UserRate are the request rates of a client, and of
	// one user of a client, for clients that set none of their own; the
	// zero Rate is no limit.
	ClientRate, UserRate Rate
	// AuthFailRate bounds failed authentications per source address and
	// per presented credential; the zero Rate counts none.
	AuthFailRate Rate
	// UserTokensPerMinute caps the input+output tokens of one user (across
	// clients) per UTC minute; 0 is no cap.
	UserTokensPerMinute int64
	// FailOpen admits calls, logging a warning, when the store cannot be
	// reached; false refuses them with a fault.StoreUnavailable.
	FailOpen bool
	// Clients are the configured clients, each with its own limits; a
	// client not listed gets ClientRate and UserRate and no in-flight
	// cap, and does not appear in Usage's report.
	Clients []Client
	// Budgets cap spend; none caps nothing.
	Budgets []Budget
	// Pricing is USD per million tokens by model name (a key ending in
	// "*" matches as a prefix, as does a key that is a prefix of the
	// model); models it does not name fall back to DefaultPricing.
	Pricing map[string]Pricing
}

// Store kinds.
const (
	// StoreMemory keeps counts in this process ("" is the same).
	StoreMemory = "memory"
	// StoreRedis shares counts through Redis between instances.
	StoreRedis = "redis"
)

// Store says where a Limiter keeps its counts.
type Store struct {
	// Kind is StoreMemory ("" is the same) or StoreRedis.
	Kind string
	// RedisURL is the Redis URL of StoreRedis; when empty, the
	// environment variable RedisURLEnv names holds it.
	RedisURL, RedisURLEnv string
	// StateFile is the bbolt file StoreMemory persists settled spend and
	// fired alerts to, so a restart keeps them; "" keeps them in memory
	// only. StoreRedis ignores it.
	StateFile string
}

// Rate is Count events per Period. The zero Rate is no limit.
type Rate struct {
	Count  int64
	Period time.Duration
}

// IsZero reports whether r is the zero Rate (no limit).
func (r Rate) IsZero() bool { return r == Rate{} }

// String writes r as config.toml does ("10-M"): S, M, H or D for a
// second, minute, hour or day, else the Go duration.
func (r Rate) String() string {
	unit := map[time.Duration]string{time.Second: "S", time.Minute: "M", time.Hour: "H", 24 * time.Hour: "D"}[r.Period]
	if unit == "" {
		unit = r.Period.String()
	}
	return strconv.FormatInt(r.Count, 10) + "-" + unit
}

// check refuses a Rate that is set but allows nothing.
func (r Rate) check() error {
	if !r.IsZero() && (r.Count <= 0 || r.Period <= 0) {
		return fmt.Errorf("invalid rate %d per %s: count and period must be positive", r.Count, r.Period)
	}
	return nil
}

// Client is the limits of one client.
type Client struct {
	// ID is the client's id, as Identity.Client names it.
	ID string
	// Rate and UserRate override Config.ClientRate and Config.UserRate
	// for this client; the zero Rate keeps the Config's.
	Rate, UserRate Rate
	// MaxInFlight caps the client's calls in progress at once; 0 is no
	// cap.
	MaxInFlight int
}

// Scope is what a budget counts: everything, a client, or a user.
type Scope string

// Budget scopes. A Budget needs one: the zero Scope is refused.
const (
	ScopeGlobal Scope = "global"
	ScopeClient Scope = "client"
	ScopeUser   Scope = "user"
)

// Period is the UTC calendar period a budget resets at the end of.
type Period string

// Budget periods. A Budget needs one: the zero Period is refused.
const (
	PeriodDay   Period = "day"
	PeriodMonth Period = "month"
)

// Budget caps spend over a period.
type Budget struct {
	// Scope is ScopeGlobal, ScopeClient or ScopeUser.
	Scope Scope
	// ID is the client or user the budget caps; "" caps each client (or
	// user) separately. A global budget has none.
	ID string
	// Period is PeriodDay or PeriodMonth.
	Period Period
	// USD and Tokens are the caps (input+output tokens); 0 is no cap of
	// that kind. A budget sets at least one.
	USD    float64
	Tokens int64
	// Alerts are fractions of the budget in (0, 1] at which an alert is
	// logged (and posted to Webhook) once per period; none fires none.
	Alerts []float64
	// Webhook is the http(s) URL alerts are posted to; "" only logs them.
	Webhook string
}

// check refuses a budget the limiter cannot count.
func (b Budget) check() error {
	switch b.Scope {
	case ScopeGlobal, ScopeClient, ScopeUser:
	default:
		return fmt.Errorf("unknown scope %q", b.Scope)
	}
	switch b.Period {
	case PeriodDay, PeriodMonth:
	default:
		return fmt.Errorf("unknown period %q", b.Period)
	}
	if b.USD < 0 || b.Tokens < 0 {
		return errors.New("usd and tokens must not be negative")
	}
	if b.USD == 0 && b.Tokens == 0 {
		return errors.New("no usd or tokens cap")
	}
	return nil
}

// Pricing is USD per million tokens for one model. A zero CacheWrite is
// 1.25 times Input and a zero CacheRead 0.1 times Input, as Anthropic
// prices them.
type Pricing struct {
	Input, Output, CacheWrite, CacheRead float64
}
