package server

import (
	"reflect"

	"github.com/moat-gateway/moat/host/internal/config"
)

// restartOnly lists the settings built once at start, which a reload
// cannot apply: each pins its running value into the reloaded config, and
// reports whether the file asked for another. Everything else in the file
// is in gateway.State or the limiter and reloads. README.md's
// configuration section has the same table; [limits] store settings are
// not here because limit.Reconfigure refuses a reload that changes them.
var restartOnly = []struct {
	key string
	pin func(running, next *config.Config) bool
}{
	{"environment", func(r, n *config.Config) bool { return pin(&r.Environment, &n.Environment) }},
	{"server.listen", func(r, n *config.Config) bool { return pin(&r.Server.Listen, &n.Server.Listen) }},
	{"server.read_header_timeout", func(r, n *config.Config) bool {
		return pin(&r.Server.ReadHeaderTimeout, &n.Server.ReadHeaderTimeout)
	}},
	{"server.read_timeout", func(r, n *config.Config) bool { return pin(&r.Server.ReadTimeout, &n.Server.ReadTimeout) }},
	{"server.idle_timeout", func(r, n *config.Config) bool { return pin(&r.Server.IdleTimeout, &n.Server.IdleTimeout) }},
	{"upstream.api_key_env", func(r, n *config.Config) bool { return pin(&r.Upstream.APIKeyEnv, &n.Upstream.APIKeyEnv) }},
	{"upstream.api_key_file", func(r, n *config.Config) bool { return pin(&r.Upstream.APIKeyFile, &n.Upstream.APIKeyFile) }},
	{"sandbox", func(r, n *config.Config) bool { return pin(&r.Sandbox, &n.Sandbox) }},
	{"admin", func(r, n *config.Config) bool { return pin(&r.Admin, &n.Admin) }},
	{"anomaly", func(r, n *config.Config) bool { return pin(&r.Anomaly, &n.Anomaly) }},
	// The audit logger (path, rotation, fsync, content policy, chain,
	// checkpoints) is opened at start; fail_open and unauthenticated_rate
	// are read per request and reload.
	{"audit (all but fail_open and unauthenticated_rate)", func(r, n *config.Config) bool {
		running := r.Audit
		running.FailOpen, running.UnauthenticatedRate = n.Audit.FailOpen, n.Audit.UnauthenticatedRate
		return pin(&running, &n.Audit)
	}},
}

// pin sets *next to *running and reports whether they differed.
func pin[T any](running, next *T) bool {
	changed := !reflect.DeepEqual(*running, *next)
	*next = *running
	return changed
}

// pinRestartOnly keeps the running value of every restart-only setting in
// next, so that the reloaded state describes what runs, and returns the
// settings whose new value waits for a restart.
func pinRestartOnly(running, next *config.Config) []string {
	var changed []string
	for _, k := range restartOnly {
		if k.pin(running, next) {
			changed = append(changed, k.key)
		}
	}
	return changed
}
