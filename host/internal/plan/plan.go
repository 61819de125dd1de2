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
	"errors"
	"os"
	"time"

	"github.com/moat-gateway/moat/host/internal/anomaly"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/keysource"
	"github.com/moat-gateway/moat/host/internal/upstream"
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
