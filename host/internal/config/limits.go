package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ulule/limiter/v3"
)

// Limits holds the rate-limit defaults and the store behind them.
type Limits struct {
	// Store is "memory" (default) or "redis".
	Store       string `toml:"store"`
	RedisURL    string `toml:"redis_url"`
	RedisURLEnv string `toml:"redis_url_env"`
	// ClientRate and UserRate are defaults in ulule's format ("10-M").
	ClientRate string `toml:"client_rate"`
	UserRate   string `toml:"user_rate"`
	// UserTokensPerMinute caps input+output tokens per user per minute.
	UserTokensPerMinute int64 `toml:"user_tokens_per_minute"`
	// FailOpen admits requests when the store is unreachable.
	FailOpen bool `toml:"fail_open"`
	// StatePath is the file budgets persist to with the memory store;
	// default .moat-state.db next to the config.
	StatePath string `toml:"state_path"`
	// AuthFailRate limits authentication failures per source IP.
	AuthFailRate string `toml:"auth_fail_rate"`
}

// Budget caps spend over a period.
type Budget struct {
	// Scope is "global", "client" or "user".
	Scope string `toml:"scope"`
	// ID is the client or user id; empty means each one separately.
	ID string `toml:"id"`
	// Period is "day" or "month" (UTC).
	Period string  `toml:"period"`
	USD    float64 `toml:"usd"`
	Tokens int64   `toml:"tokens"`
	// Alerts are fractions of the budget at which an alert fires once.
	Alerts  []float64 `toml:"alerts"`
	Webhook string    `toml:"webhook"`
}

// Pricing is USD per million tokens for one model.
type Pricing struct {
	Input      float64 `toml:"input"`
	Output     float64 `toml:"output"`
	CacheWrite float64 `toml:"cache_write"`
	CacheRead  float64 `toml:"cache_read"`
}

// Admin is the separate admin listener.
type Admin struct {
	// Listen is empty to disable the admin listener.
	Listen   string `toml:"listen"`
	TokenEnv string `toml:"token_env"`
	// Pprof serves /debug/pprof on the admin listener.
	Pprof bool `toml:"pprof"`
	// MetricsAuth requires the admin token for /metrics too.
	MetricsAuth bool `toml:"metrics_auth"`
	// AllowedHosts are the host names (no port) the admin listener answers
	// to besides localhost, loopback addresses and its own listen address;
	// any other Host header is refused (DNS rebinding).
	AllowedHosts []string `toml:"allowed_hosts"`
	// TLSCertFile and TLSKeyFile, set together, serve the admin listener
	// over TLS.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
}

func (c *Config) validateAdmin(p *problems) {
	a := &c.Admin
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		p.add("admin.tls_cert_file", "set tls_cert_file and tls_key_file together")
	}
	for i, h := range a.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/:@ \t") {
			p.add(fmt.Sprintf("admin.allowed_hosts[%d]", i), "must be a bare host name without scheme, port or path, got %q", h)
		}
	}
}

func (l *Limits) applyDefaults() {
	if l.Store == "" {
		l.Store = "memory"
	}
	if l.AuthFailRate == "" {
		l.AuthFailRate = "20-M"
	}
}

func (b *Budget) applyDefaults() {
	if b.Period == "" {
		b.Period = "month"
	}
}

func (a *Admin) applyDefaults() {
	if a.TokenEnv == "" {
		a.TokenEnv = "MOAT_ADMIN_TOKEN"
	}
}

// StateFile returns the budget state file path.
func (c *Config) StateFile() string {
	if c.Limits.StatePath != "" {
		return c.resolve(c.Limits.StatePath)
	}
	return c.resolve(".moat-state.db")
}

func checkRate(p *problems, key, rate string) {
	if rate == "" {
		return
	}
	r, err := limiter.NewRateFromFormatted(rate)
	if err != nil {
		p.add(key, "invalid rate %q (ulule format, e.g. \"10-M\", \"1000-H\")", rate)
		return
	}
	if r.Limit <= 0 {
		p.add(key, "rate %q allows nothing: the count must be positive", rate)
	}
}

func (c *Config) validateLimits(p *problems) {
	l := &c.Limits
	switch l.Store {
	case "memory":
	case "redis":
		if l.RedisURL == "" && l.RedisURLEnv == "" {
			p.add("limits.redis_url", "is required when store = \"redis\" (or set redis_url_env)")
		}
	default:
		p.add("limits.store", "must be \"memory\" or \"redis\", got %q", l.Store)
	}
	checkRate(p, "limits.client_rate", l.ClientRate)
	checkRate(p, "limits.user_rate", l.UserRate)
	checkRate(p, "limits.auth_fail_rate", l.AuthFailRate)
	if l.UserTokensPerMinute < 0 {
		p.add("limits.user_tokens_per_minute", "must not be negative")
	}
	for i, b := range c.Budgets {
		key := fmt.Sprintf("budgets[%d]", i)
		switch b.Scope {
		case "global":
			if b.ID != "" {
				p.add(key+".id", "a global budget has no id")
			}
		case "client":
			if b.ID != "" {
				if _, ok := c.Client(b.ID); !ok {
					p.add(key+".id", "names client %q, which no [[clients]] block defines", b.ID)
				}
			}
		case "user":
		default:
			p.add(key+".scope", "must be \"global\", \"client\" or \"user\", got %q", b.Scope)
		}
		switch b.Period {
		case "day", "month":
		default:
			p.add(key+".period", "must be \"day\" or \"month\", got %q", b.Period)
		}
		if b.USD <= 0 && b.Tokens <= 0 {
			p.add(key, "set usd and/or tokens")
		}
		if b.USD < 0 || b.Tokens < 0 {
			p.add(key, "usd and tokens must not be negative")
		}
		for _, a := range b.Alerts {
			if a <= 0 || a > 1 {
				p.add(key+".alerts", "thresholds are fractions in (0, 1], got %v", a)
			}
		}
		if b.Webhook != "" {
			if u, err := url.Parse(b.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add(key+".webhook", "must be an http:// or https:// URL, got %q", b.Webhook)
			}
		}
	}
	for m, pr := range c.Pricing {
		if pr.Input < 0 || pr.Output < 0 || pr.CacheWrite < 0 || pr.CacheRead < 0 {
			p.add(fmt.Sprintf("pricing[%q]", m), "prices must not be negative")
		}
	}
}
