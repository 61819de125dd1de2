// Package plan compiles a parsed config.toml (host/internal/config, the
// TOML schema with its defaults) into the typed options each component
// takes: parsed durations and addresses, one options struct per
// component. Components declare their own options and never import the
// TOML schema; this package is the one place that knows both.
//
// Arrows: plan imports config and the components; components import
// neither plan nor config; the server (and the gateway's state builder)
// import plan.
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/moat-gateway/moat/host/internal/anomaly"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/keysource"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/internal/upstream"
	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
	"github.com/ulule/limiter/v3"
)

// Anomaly compiles [anomaly].
func Anomaly(c config.Anomaly) anomaly.Config {
	return anomaly.Config{
		Enabled:      c.Enabled,
		SpendFactor:  c.SpendFactor,
		NewIP:        c.NewIP,
		AuthFailures: c.AuthFailures,
		Webhook:      c.Webhook,
	}
}

// KeySource compiles where the upstream key is ([upstream] api_key_file,
// api_key_env).
func KeySource(c config.Upstream) keysource.Config {
	return keysource.Config{File: c.APIKeyFile, Env: c.APIKeyEnv}
}

// Upstream compiles the upstream client's options from [upstream] and
// [retry].
func Upstream(c *config.Config) upstream.Options {
	u, r := c.Upstream, c.Retry
	return upstream.Options{
		BaseURL:          u.BaseURL,
		ConnectTimeout:   u.ConnectTimeout.Duration,
		FirstByteTimeout: u.FirstByteTimeout.Duration,
		MaxIdleConns:     u.MaxIdleConns,
		Retry:            upstream.Retry{Attempts: r.Attempts, Backoff: r.Backoff.Duration, MaxBackoff: r.MaxBackoff.Duration},
	}
}

// Audit compiles [audit] for the audit log (fail_open and
// unauthenticated_rate are the gateway's, read per request).
func Audit(c config.Audit) audit.Config {
	out := audit.Config{
		Path:               c.Path,
		Disabled:           c.Disabled,
		Content:            c.Content,
		HMACKeyEnv:         c.HMACKeyEnv,
		HMACKeyFile:        c.HMACKeyFile,
		MaxBytes:           int64(c.MaxSizeMB) << 20,
		ChainKeyEnv:        c.ChainKeyEnv,
		ChainKeyFile:       c.ChainKeyFile,
		CheckpointPath:     c.CheckpointPath,
		CheckpointInterval: c.CheckpointInterval.Duration,
	}
	// config.Load has checked fsync: "every" or a positive duration.
	if c.FSync != "" && c.FSync != "every" {
		out.FSyncInterval, _ = time.ParseDuration(c.FSync)
	}
	return out
}

// CheckpointRedis returns the Redis checkpoint store of c when its limits
// use Redis (limits.store = "redis"), nil otherwise.
func CheckpointRedis(c *config.Config) (*audit.RedisStore, error) {
	if c.Limits.Store != "redis" {
		return nil, nil
	}
	url := c.Limits.RedisURL
	if url == "" && c.Limits.RedisURLEnv != "" {
		url = os.Getenv(c.Limits.RedisURLEnv)
	}
	if url == "" {
		return nil, errors.New("audit checkpoints: limits.store = \"redis\" but no redis url is set")
	}
	return audit.NewRedisStore(url, c.Audit.Path)
}

// Limits compiles what the limiter enforces: [limits], each client's
// rate, user_rate and max_in_flight, [[budgets]] and [pricing]. A rate
// that does not parse (config.Load refuses it) is an error naming its key.
func Limits(c *config.Config) (limit.Config, error) {
	l := c.Limits
	out := limit.Config{
		Store: limit.Store{
			Kind:        l.Store,
			RedisURL:    l.RedisURL,
			RedisURLEnv: l.RedisURLEnv,
			StateFile:   c.StateFile(),
		},
		UserTokensPerMinute: l.UserTokensPerMinute,
		FailOpen:            l.FailOpen,
	}
	var err error
	rate := func(key, s string, to *limit.Rate) {
		if err == nil {
			if *to, err = Rate(s); err != nil {
				err = fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	rate("limits.client_rate", l.ClientRate, &out.ClientRate)
	rate("limits.user_rate", l.UserRate, &out.UserRate)
	rate("limits.auth_fail_rate", l.AuthFailRate, &out.AuthFailRate)
	for _, cl := range c.Clients {
		lc := limit.Client{ID: cl.ID, MaxInFlight: cl.MaxInFlight}
		rate(fmt.Sprintf("clients[%q].rate", cl.ID), cl.Rate, &lc.Rate)
		rate(fmt.Sprintf("clients[%q].user_rate", cl.ID), cl.UserRate, &lc.UserRate)
		out.Clients = append(out.Clients, lc)
	}
	if err != nil {
		return limit.Config{}, err
	}
	for _, b := range c.Budgets {
		out.Budgets = append(out.Budgets, limit.Budget{
			Scope:   limit.Scope(b.Scope),
			ID:      b.ID,
			Period:  limit.Period(b.Period),
			USD:     b.USD,
			Tokens:  b.Tokens,
			Alerts:  b.Alerts,
			Webhook: b.Webhook,
		})
	}
	if c.Pricing != nil {
		out.Pricing = make(map[string]limit.Pricing, len(c.Pricing))
		for m, p := range c.Pricing {
			out.Pricing[m] = limit.Pricing{Input: p.Input, Output: p.Output, CacheWrite: p.CacheWrite, CacheRead: p.CacheRead}
		}
	}
	return out, nil
}

// Rate parses a rate in config.toml's (ulule's) format, "10-M": a count,
// then S, M, H or D for per second, minute, hour or day. "" is the zero
// Rate (no limit).
func Rate(s string) (limit.Rate, error) {
	if s == "" {
		return limit.Rate{}, nil
	}
	r, err := limiter.NewRateFromFormatted(s)
	if err != nil || r.Limit <= 0 {
		return limit.Rate{}, fmt.Errorf("invalid rate %q", s)
	}
	return limit.Rate{Count: r.Limit, Period: r.Period}, nil
}

// PluginLimits compiles the sandbox limits of one [[plugins]] entry.
func PluginLimits(pl *config.Plugin) wasm.Limits {
	return wasm.Limits{
		MemoryMB:           pl.MemoryMB,
		Timeout:            time.Duration(pl.TimeoutMS) * time.Millisecond,
		MaxOutputBytes:     pl.MaxOutputBytes,
		PoolSize:           pl.PoolSize,
		RecycleCalls:       pl.RecycleCalls,
		RecycleMemoryBytes: int64(pl.RecycleMemoryMB) << 20,
		Fresh:              pl.Isolation == "fresh",
		MaxConcurrency:     pl.MaxConcurrency,
		QueueTimeout:       time.Duration(pl.QueueTimeoutMS) * time.Millisecond,
		BreakerFailures:    pl.Breaker.Failures,
		BreakerCooldown:    pl.Breaker.Cooldown.Duration,
	}
}

// DefaultPluginLimits are the sandbox limits of a [[plugins]] entry that
// sets none of its own (a name, a path and a hash only), as config.toml's
// defaults give them.
func DefaultPluginLimits() (wasm.Limits, error) {
	const block = "[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\nsha256 = \"" +
		"0000000000000000000000000000000000000000000000000000000000000000\"\n"
	c, err := config.Parse([]byte(block), "")
	if err != nil {
		return wasm.Limits{}, fmt.Errorf("building default plugin limits: %w", err)
	}
	return PluginLimits(&c.Plugins[0]), nil
}

// Plugin compiles one [[plugins]] entry of c: its path resolved against
// the config's directory, its config table as JSON, its limits.
func Plugin(c *config.Config, pl *config.Plugin) (pipeline.PluginSpec, error) {
	out := pipeline.PluginSpec{
		Name:      pl.Name,
		SHA256:    pl.SHA256,
		Builtin:   pl.Builtin,
		Native:    pl.Runtime == "native",
		OnError:   pl.OnError,
		Streaming: pl.Streaming,
		HoldBack:  pl.HoldBack,
		Limits:    PluginLimits(pl),
	}
	if pl.Path != "" {
		out.Path = c.ResolvedPath(pl)
	}
	if len(pl.Config) > 0 {
		b, err := json.Marshal(pl.Config)
		if err != nil {
			return out, fmt.Errorf("loading plugin %q: encoding config table: %w", pl.Name, err)
		}
		out.Config = b
	}
	return out, nil
}

// Pipeline compiles what the plugin registry loads: every [[plugins]]
// entry, and every chain that names plugins (the default chains, then
// each client's and each route's own), to be checked in that order.
func Pipeline(c *config.Config) (pipeline.Spec, error) {
	var spec pipeline.Spec
	for i := range c.Plugins {
		ps, err := Plugin(c, &c.Plugins[i])
		if err != nil {
			return spec, err
		}
		spec.Plugins = append(spec.Plugins, ps)
	}
	add := func(where string, phase abi.Phase, names []string) {
		spec.Chains = append(spec.Chains, pipeline.ChainSpec{Where: where, Phase: phase, Names: names})
	}
	add("pipeline.input", abi.PhaseInput, c.Pipeline.Input)
	add("pipeline.output", abi.PhaseOutput, c.Pipeline.Output)
	for _, cl := range c.Clients {
		if cl.Input != nil {
			add(fmt.Sprintf("clients[%q].input", cl.ID), abi.PhaseInput, *cl.Input)
		}
		if cl.Output != nil {
			add(fmt.Sprintf("clients[%q].output", cl.ID), abi.PhaseOutput, *cl.Output)
		}
	}
	for _, r := range c.Routes {
		if r.Input != nil {
			add(fmt.Sprintf("routes[%q].input", r.Name), abi.PhaseInput, *r.Input)
		}
		if r.Output != nil {
			add(fmt.Sprintf("routes[%q].output", r.Name), abi.PhaseOutput, *r.Output)
		}
	}
	return spec, nil
}

// Route compiles the prompt of one [[routes]] entry: its template checked
// (the tag, the variables, each {{var.NAME}} declared) and ready to render.
func Route(r *config.Route) (*prompt.Template, error) {
	return prompt.Compile(RoutePrompt(r))
}

// RoutePrompt is the prompt part of one [[routes]] entry, uncompiled.
func RoutePrompt(r *config.Route) prompt.Route {
	return prompt.Route{
		Name:          r.Name,
		System:        r.SystemText,
		Task:          r.Task,
		Tag:           r.Tag,
		Label:         r.Label,
		Variables:     r.Variables,
		MaxInputBytes: r.MaxInputBytes,
		Canary:        r.Canary,
	}
}

// TrustedProxies parses server.trusted_proxies (CIDRs or single
// addresses) into prefixes; a bad entry is an error naming it.
func TrustedProxies(c *config.Config) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range c.Server.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// AuthClient compiles what auth checks of one client: its keys (key_sha256,
// then [[clients.keys]]), its allow_ips parsed, its user header and CORS
// origins.
func AuthClient(cl *config.Client) (auth.Client, error) {
	out := auth.Client{
		ID:          cl.ID,
		Trusted:     cl.Trusted,
		UserHeader:  cl.UserHeader,
		CORSOrigins: cl.CORSOrigins,
	}
	if cl.KeySHA256 != "" {
		out.Keys = append(out.Keys, auth.Key{SHA256: cl.KeySHA256})
	}
	for _, k := range cl.Keys {
		out.Keys = append(out.Keys, auth.Key{SHA256: k.SHA256, Expires: k.Expires, Revoked: k.Revoked})
	}
	for _, s := range cl.AllowIPs {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("client %q allow_ips: %w", cl.ID, err)
		}
		out.AllowIPs = append(out.AllowIPs, p)
	}
	return out, nil
}

// JWT compiles [jwt]; nil when it is not enabled.
func JWT(j config.JWT) *auth.JWT {
	if !j.Enabled {
		return nil
	}
	return &auth.JWT{
		Client:        j.Client,
		Algorithms:    j.Algorithms,
		SecretEnv:     j.SecretEnv,
		SecretFile:    j.SecretFile,
		PublicKeyFile: j.PublicKeyFile,
		JWKSFile:      j.JWKSFile,
		Issuer:        j.Issuer,
		Audience:      j.Audience,
		Leeway:        j.Leeway.Duration,
	}
}

// Auth compiles who may call: the config's clients, then local (clients
// generated on first start, not in config.toml), and [jwt].
func Auth(c *config.Config, local []config.Client) (auth.Options, error) {
	out := auth.Options{JWT: JWT(c.JWT)}
	for _, cl := range Clients(c, local) {
		ac, err := AuthClient(&cl)
		if err != nil {
			return out, err
		}
		out.Clients = append(out.Clients, ac)
	}
	return out, nil
}

// Clients returns the config's clients followed by local, each local one
// marked Local.
func Clients(c *config.Config, local []config.Client) []config.Client {
	all := make([]config.Client, 0, len(c.Clients)+len(local))
	all = append(all, c.Clients...)
	for _, cl := range local {
		cl.Local = true
		all = append(all, cl)
	}
	return all
}

// Exchange compiles what the exchange reads of every call: the audit
// trail's content policy, sampling and fail_open, and the upstream's
// time and size bounds.
func Exchange(c *config.Config) exchange.Options {
	return exchange.Options{
		KeepContent:         c.Audit.Content != "off",
		UnauthenticatedRate: c.Audit.UnauthenticatedRate,
		FailOpen:            c.Audit.FailOpen,
		Timeout:             c.Upstream.Timeout.Duration,
		MaxResponseBytes:    c.Upstream.MaxResponseBytes,
		StreamIdle:          c.Upstream.StreamIdleTimeout.Duration,
		MaxStreamDuration:   c.Upstream.MaxStreamDuration.Duration,
	}
}

// ClientPolicy compiles what the exchange enforces for one client.
func ClientPolicy(cl *config.Client) exchange.Client {
	return exchange.Client{
		Models:        cl.Models,
		MaxTokens:     cl.MaxTokens,
		System:        cl.System,
		SystemPrompt:  cl.SystemPrompt,
		Judge:         cl.Judge,
		WrapUserInput: cl.WrapUserInput,
		Tag:           cl.Tag,
		Canary:        cl.Canary,
		Trusted:       cl.Trusted,
	}
}

// ExchangeRoute compiles one [[routes]] entry's settings for its calls,
// with its compiled prompt (see Route); the caller adds its chains.
func ExchangeRoute(r *config.Route) (exchange.Route, error) {
	t, err := Route(r)
	if err != nil {
		return exchange.Route{}, err
	}
	return exchange.Route{
		Name:          r.Name,
		Model:         r.Model,
		MaxTokens:     r.MaxTokens,
		Temperature:   r.Temperature,
		Stream:        r.Stream,
		JSON:          r.Format == "json",
		RepairRetries: r.RepairRetries,
		PromptBytes:   len(r.SystemText) + len(r.Task),
		Template:      t,
	}, nil
}
