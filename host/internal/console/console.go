// Package console is moat's admin console: a few server-rendered pages for
// operators (overview, clients and users, plugins, audit, config) served on
// the admin listener only, behind the admin token.
//
// Security model:
//   - The operator logs in by POSTing the admin token to a form; the token is
//     compared in constant time and a random session id is set in a cookie
//     (HttpOnly, SameSite=Strict, Path=/console/; Secure when the request
//     came over TLS or Options.Origin is an https:// origin: the admin
//     listener is plain HTTP on loopback, where a Secure cookie would never
//     be sent back). Sessions live in memory with an idle and an absolute
//     expiry; logout deletes them.
//   - Every state-changing call (login, logout, reload) is a POST checked
//     against the Origin (and Sec-Fetch-Site) headers; those made inside a
//     session also carry the session's synchronizer CSRF token.
//   - Every response carries a strict Content-Security-Policy (no inline
//     script or style, nothing from another origin), nosniff, no referrer to other origins and
//     no framing. Assets are embedded; the pages make no external request.
//   - Data is rendered with html/template (contextual escaping) and updated
//     by console.js with textContent only: user ids, client ids and plugin
//     reasons in audit records are attacker-controlled text.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/metrics"
)

// Prefix is the path the console is mounted under on the admin mux.
const Prefix = "/console/"

// ContentSecurityPolicy is sent with every console response.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ReloadStatus is the outcome of the last config reload. Its zero value
// means no reload happened yet. It has the fields of server.ReloadResult,
// so one converts to the other.
type ReloadStatus struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	// RestartRequired names the restart-only settings the reload left at
	// their running values.
	RestartRequired []string `json:"restart_required,omitempty"`
}

// Options configure New. Every field but Token may be nil or empty: the
// page that needs it then says the data is unavailable.
type Options struct {
	// Token is the admin token; empty refuses every login (fail closed).
	Token string
	// Metrics is read (Registry().Gather()) for rates, latency, spend and
	// plugin verdicts.
	Metrics *metrics.Metrics
	// Limiter reports rate-limit state and budgets (Usage).
	Limiter *limit.Limiter
	// AuditPath is the audit trail searched and verified (rotated files
	// included).
	AuditPath string
	// Config returns the running config (shown with secrets masked, and
	// read for the plugin chains).
	Config func() *config.Config
	// LastReload returns the last reload's outcome.
	LastReload func() ReloadStatus
	// Reload reloads the config (the reload button).
	Reload func(context.Context) error
	// PluginLoadTimes, when set, returns each loaded plugin's load time.
	PluginLoadTimes func() map[string]time.Duration
	// Origin is the console's public origin ("https://moat-admin.example")
	// when it is reached through a TLS-terminating proxy: POSTs must come
	// from it and the cookie is then Secure. Empty means the request's own
	// scheme and Host.
	Origin string
	// Logger receives login failures and reloads; nil discards.
	Logger *slog.Logger
	// Throttle counts failed logins per address; the server shares it
	// with the admin API's bearer-token check, so an attacker cannot
	// double its guesses by alternating. Nil: the console's own, allowing
	// MaxLoginFailures per address per minute.
	Throttle *auth.Throttle
}

// Console serves the admin console. Build it with New.
type Console struct {
	opts     Options
	log      *slog.Logger
	pages    map[string]*template.Template
	static   http.Handler
	sessions *sessionStore
	throttle *auth.Throttle
	now      func() time.Time

	sampleMu sync.Mutex
	ring     *ring
	spend    spendBooks
}

// New builds a console. It starts no goroutine: the metrics are sampled
// (at most every SampleEvery) when the overview data is read, which the
// overview page does every few seconds while it is open.
func New(opts Options) *Console {
	c := &Console{
		opts:     opts,
		log:      opts.Logger,
		sessions: newSessionStore(),
		throttle: opts.Throttle,
		now:      time.Now,
		ring:     newRing(ringSize),
	}
	if c.throttle == nil {
		c.throttle = auth.NewThrottle(MaxLoginFailures)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.pages = parsePages()
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("console: embedded static assets missing: " + err.Error()) // build-time invariant
	}
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return c
}

// Handler serves the console; mount it under Prefix ("/console/") on the
// admin listener only.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.login)
	mux.HandleFunc("GET "+Prefix+"static/", c.serveStatic)
	mux.Handle("POST "+Prefix+"logout", c.mutating(c.logout))
	mux.Handle("POST "+Prefix+"reload", c.mutating(c.reload))
	mux.Handle("GET "+Prefix+"{$}", c.page(c.overviewPage))
	mux.Handle("GET "+Prefix+"clients", c.page(c.clientsPage))
	mux.Handle("GET "+Prefix+"plugins", c.page(c.pluginsPage))
	mux.Handle("GET "+Prefix+"audit", c.page(c.auditPage))
	mux.Handle("GET "+Prefix+"audit/record", c.page(c.recordPage))
	mux.Handle("GET "+Prefix+"config", c.page(c.configPage))
	mux.Handle("GET "+Prefix+"api/overview", c.api(c.overviewData))
	mux.Handle("GET "+Prefix+"api/usage", c.api(c.usageData))
	mux.Handle("GET "+Prefix+"api/plugins", c.api(c.pluginsData))
	mux.Handle("GET "+Prefix+"api/audit", c.api(c.auditData))
	return secureHeaders(mux)
}

// secureHeaders sets the security headers on every response, errors and
// redirects included.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // not no-referrer: with it, browsers send "Origin: null" on form POSTs
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Assets are public (no data in them) so the login page can use them.
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}
