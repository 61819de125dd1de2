// Package gateway is moat's HTTP edge, on Gin: the routes and middleware
// (request ids, panics), authentication and CORS from the request's
// headers, the relayed request and response headers, reading bodies,
// status codes, SSE framing, and writing errors in Anthropic's shape,
// mapped from the components' errors in one place (asAPIError, decision).
//
// Where a request goes: a handler authenticates the caller and reads the
// body, then hands it to host/internal/exchange (admit, reserve, input
// chain, upstream, output guard, settle, record), giving it the call as its
// Upstream (the API client with the caller's relayed headers) and its
// Response (JSON, or an SSE stream judged by host/internal/streamguard). An
// error comes back to the handler, which the exchange has recorded and the
// edge writes. State is what one config builds (plugins, chains, the
// upstream client), swapped atomically on reload.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anomaly"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/metrics"
)

// Deps are the long-lived components the gateway calls (the upstream
// client is per config: State.Upstream). Limiter and Logger are required;
// a nil Audit or Metrics disables that component.
type Deps struct {
	Limiter *limit.Limiter
	Audit   *audit.Logger
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Secrets returns the values that must never be echoed (the upstream
	// keys, current and previous).
	Secrets func() []string
	// Anomaly is told of key uses, authentication failures and spend; nil
	// (anomaly alerts off) ignores them.
	Anomaly *anomaly.Detector
	// KeyFingerprint names the upstream key in logs (keysource.Fingerprint
	// of the current key); nil logs "unknown".
	KeyFingerprint func() string
}

// Gateway serves the public API. Its per-config State is swapped
// atomically on reload; a request keeps the State it started with.
type Gateway struct {
	deps   Deps
	state  atomic.Pointer[State]
	engine *gin.Engine
	// inflight counts requests being served, for graceful shutdown.
	inflight refCount
	// unauth samples the audit lines of unauthenticated requests.
	unauth unauthSampler
	// keys tracks whether the upstream accepts moat's key.
	keys keyHealth
	// x are the exchange's dependencies, shared by every call.
	x exchange.Deps
}

func init() { gin.SetMode(gin.ReleaseMode) }

// New returns a gateway serving st.
func New(deps Deps, st *State) *Gateway {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Secrets == nil {
		deps.Secrets = func() []string { return nil }
	}
	g := &Gateway{deps: deps}
	g.x = exchange.Deps{Limiter: deps.Limiter, Audit: deps.Audit, Metrics: deps.Metrics, Logger: deps.Logger,
		Anomaly: deps.Anomaly, Secrets: deps.Secrets, Told: toAPI, Decide: decision, Sample: g.unauth.admit}
	g.state.Store(st)
	g.engine = g.routes()
	return g
}

// State returns the current state.
func (g *Gateway) State() *State { return g.state.Load() }

// Swap installs a new state for new requests and returns the old one;
// requests in flight finish on the state they started with. The caller
// closes the old state with old.Retire.
func (g *Gateway) Swap(st *State) *State { return g.state.Swap(st) }

// Handler returns the public HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

func (g *Gateway) routes() *gin.Engine {
	e := gin.New()
	e.HandleMethodNotAllowed = false
	// Route on the path as sent, and decode parameters once: an encoded
	// "/" inside /v1/models/{id} stays part of the id (re-encoded
	// upstream by modelsPath) instead of splitting the path.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.Use(g.requestID, g.recoverer)
	e.NoRoute(g.handle(EndpointUnrouted, func(cl *call) error {
		return fault.New(fault.NotFound, "no route for %s %s", clip(cl.c.Request.Method, 16), clip(cl.c.Request.URL.Path, 200))
	}))
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", g.readyz)
	e.OPTIONS("/v1/*path", g.preflight)
	e.POST("/v1/messages", g.handle("/v1/messages", (*call).serveMessages))
	e.POST("/v1/messages/count_tokens", g.handle("/v1/messages/count_tokens", (*call).serveCountTokens))
	models := g.handle("/v1/models", (*call).serveModels)
	e.GET("/v1/models", models)
	e.GET("/v1/models/:id", models)
	e.POST("/v1/routes/:name", g.handle("/v1/routes", (*call).serveRoute))
	return e
}

// EndpointUnrouted is the audit and metrics endpoint of a request to a
// path moat does not serve (its path is in the record's error, clipped).
const EndpointUnrouted = "unrouted"

// clip cuts s to at most n bytes (on a rune boundary) for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func (g *Gateway) readyz(c *gin.Context) {
	if err := g.deps.Audit.Healthy(); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "audit unavailable"})
		return
	}
	if rejected, _ := g.UpstreamKeyRejected(); rejected {
		g.probeKey(c.Request.Context())
		if rejected, since := g.UpstreamKeyRejected(); rejected {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "upstream rejected the gateway's API key", "since": since.UTC().Format(time.RFC3339), "key": g.keyFingerprint()})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// requestIDKey is the Gin context key of the call's moat request id.
const requestIDKey = "moat.request_id"

// requestID gives every response a request id before anything is written:
// x-moat-request-id is always moat's own; request-id, which the SDKs report
// as the error's RequestID, is moat's too until the upstream answers, when
// the upstream's id replaces it.
func (g *Gateway) requestID(c *gin.Context) {
	id := newRequestID()
	c.Set(requestIDKey, id)
	// Canonical keys set directly: Header.Set would canonicalize per call.
	h := c.Writer.Header()
	v := []string{id}
	h["Request-Id"] = v
	h[hdrRequestID] = v
	c.Next()
}

// requestIDOf returns the request id the requestID middleware gave c.
func requestIDOf(c *gin.Context) string {
	if id := c.GetString(requestIDKey); id != "" {
		return id
	}
	return newRequestID()
}

// recoverer turns a panic into a 500 in Anthropic's shape, without the
// stack in the response.
func (g *Gateway) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.deps.Logger.Error("panic serving request", "request_id", requestIDOf(c), "path", c.Request.URL.Path, "panic", fmt.Sprint(v))
			if !c.Writer.Written() {
				g.writeError(c, requestIDOf(c), toAPI(fault.New(fault.Internal, "internal error")))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// newRequestID returns a moat request id. It must not look like a moat
// client key ("moat_" + 16 or more characters): the audit log scrubs
// key-shaped strings from every field, request_id included.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_moat" + hex.EncodeToString(b[:])
}

// clientIP returns the caller's address, believing X-Forwarded-For only
// from trusted proxies.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	fromProxy := false
	for _, p := range trusted {
		if p.Contains(ip) {
			fromProxy = true
		}
	}
	if !fromProxy {
		return ip
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		last := xff
		for i := len(xff) - 1; i >= 0; i-- {
			if xff[i] == ',' {
				last = xff[i+1:]
				break
			}
		}
		if a, err := netip.ParseAddr(trimSpace(last)); err == nil {
			return a.Unmap()
		}
	}
	return ip
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Wait blocks until requests in flight finish or ctx ends.
func (g *Gateway) Wait(ctx context.Context) error {
	select {
	case <-g.inflight.retire():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
