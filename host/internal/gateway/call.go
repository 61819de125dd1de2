package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
)

// call is one request on its way through the gateway: what is known about
// it so far, and what must be undone or recorded at the end.
type call struct {
	g     *Gateway
	st    *State
	c     *gin.Context
	start time.Time
	id    string
	ip    netip.Addr

	endpoint string
	route    string
	model    string
	stream   bool
	who      auth.Identity
	// authed is set once the caller authenticated; the audit lines of
	// calls without it are sampled (audit.unauthenticated_rate).
	authed bool
	// refusedBy, when set, is who decided the call's refusal in its audit
	// record, over its kind's row: authentication's refusals are "auth"
	// whatever their kind.
	refusedBy string

	ticket   *limit.Ticket
	res      *limit.Reservation
	verdicts []pipeline.Record
	usage    anthropic.Usage
	cost     float64
	input    strings.Builder
	output   strings.Builder

	upstreamID   string
	upstreamTime time.Duration
	finished     bool

	// guard is the output guard of the call, once built; scrub masks keys
	// in what the client receives (see output.go).
	guard *outputGuard
	scrub *scrub.Scrubber
	// detached is the request's context without its cancellation, made
	// once: settling, releasing and auditing finish when the client leaves.
	detached context.Context
	// stopped ends the call's count in moat_requests_in_flight.
	stopped func()
}

func (g *Gateway) begin(c *gin.Context, endpoint string) *call {
	g.inflight.add()
	st := g.state.Load()
	for !st.refs.acquire() {
		// Swapped and drained between the load and the acquire: the
		// pointer already holds the next state.
		st = g.state.Load()
	}
	cl := &call{g: g, st: st, c: c, start: time.Now(), id: requestIDOf(c), ip: clientIP(c.Request, st.trusted), endpoint: endpoint, stopped: g.deps.Metrics.Start()}
	return cl
}

// hdrRequestID is the response header naming moat's request id, in
// canonical form.
const hdrRequestID = "X-Moat-Request-Id"

// background returns the request's context without its cancellation.
func (cl *call) background() context.Context {
	if cl.detached == nil {
		cl.detached = context.WithoutCancel(cl.c.Request.Context())
	}
	return cl.detached
}

// end releases what the call holds. It runs deferred in every handler.
func (cl *call) end() {
	if cl.res != nil {
		cl.res.Release(cl.background())
	}
	if cl.ticket != nil {
		cl.ticket.Done()
	}
	cl.st.refs.release()
	cl.g.inflight.release()
	cl.stopped()
}

// keepContent reports whether the audit trail stores content, so the call
// must collect it.
func (cl *call) keepContent() bool { return cl.st.Config.Audit.Content != "off" }

// keepInput and keepOutput collect content for the audit trail.
func (cl *call) keepInput(s string) {
	if cl.keepContent() {
		cl.input.WriteString(s)
	}
}

func (cl *call) keepOutput(s string) {
	if cl.keepContent() {
		cl.output.WriteString(s)
	}
}

// authenticate identifies the caller. Credentials are checked first: a
// request with a valid key or JWT is served whatever failed before from
// its address. Only a request that fails to authenticate meets the lockout
// (limits.auth_fail_rate, counted per address and per presented
// credential): past the rate for either it gets a 429 instead of a 401. A 400 (a valid credential naming a malformed
// user id) is not a failed authentication.
func (cl *call) authenticate() error {
	r := cl.c.Request
	who, err := cl.st.Auth.Authenticate(r, cl.ip)
	if err != nil {
		cl.refusedBy = audit.ByAuth // its refusals are auth's, whatever their kind
		if errors.Is(err, fault.InvalidRequest) {
			return err
		}
		// A recognized key (revoked, expired, wrong address) names its
		// client in the record.
		cl.who = auth.Identity{ClientID: who.ClientID, KeyHash: who.KeyHash}
		return cl.authFailed(r, err)
	}
	cl.who, cl.authed = who, true
	if who.Via == auth.ViaKey && cl.ip.IsValid() {
		// JWTs are left out: each token differs, and users roam.
		cl.g.deps.Anomaly.KeyUse(who.ClientID, who.KeyHash, cl.ip.String(), time.Now())
	}
	if origin := cl.c.GetHeader("Origin"); origin != "" && cl.st.CORS != nil {
		cl.st.CORS.Apply(cl.c.Writer.Header(), origin, who.ClientID)
	}
	return nil
}

// authFailed counts a failed authentication against the address and the
// presented credential, and returns the refusal: the lockout's 429 once
// either is past limits.auth_fail_rate, else err.
func (cl *call) authFailed(r *http.Request, err error) error {
	ip := ""
	if cl.ip.IsValid() {
		ip = cl.ip.String()
		cl.g.deps.Anomaly.AuthFailure(ip, time.Now())
	}
	lim := cl.g.deps.Limiter
	if lim == nil {
		return err
	}
	if lerr := lim.AuthFailure(r.Context(), ip, auth.CredentialHash(r.Header)); lerr != nil {
		cl.refusedBy = "" // the lockout, or a store failure (fail closed): the limiter's
		return lerr
	}
	return err
}

// admit applies rate limits and the in-flight cap.
func (cl *call) admit() error {
	t, err := cl.g.deps.Limiter.Admit(cl.c.Request.Context(), limit.Identity{Client: cl.who.ClientID, User: cl.who.User})
	if err != nil {
		return err
	}
	cl.ticket = t
	t.CopyHeaders(cl.c.Writer.Header())
	return nil
}

// reserve holds the worst-case cost of the call against every budget.
func (cl *call) reserve(model string, estInput, maxOutput int64) error {
	r, err := cl.g.deps.Limiter.Reserve(cl.c.Request.Context(), limit.Identity{Client: cl.who.ClientID, User: cl.who.User}, model, estInput, maxOutput)
	if err != nil {
		return err
	}
	cl.res = r
	return nil
}

// settle turns the reservation into the real usage.
func (cl *call) settle() {
	if cl.res == nil {
		return
	}
	u := limit.Usage{
		InputTokens:              cl.usage.InputTokens,
		OutputTokens:             cl.usage.OutputTokens,
		CacheCreationInputTokens: cl.usage.CacheCreationInputTokens,
		CacheReadInputTokens:     cl.usage.CacheReadInputTokens,
	}
	cost, err := cl.res.Settle(cl.background(), cl.model, u)
	if err != nil {
		cl.g.deps.Logger.Error("settling budget", "request_id", cl.id, "err", err)
	}
	cl.cost = cost
	cl.res = nil
	cl.g.deps.Anomaly.Spend(cl.who.ClientID, cost, time.Now())
}

// record writes the audit line and the metrics for the call. It returns an
// error when the record could not be written and audit is fail-closed.
func (cl *call) record(status int, err error, by string) error {
	if cl.finished {
		return nil
	}
	cl.finished = true
	rec := cl.auditRecord(status, err, by)
	cl.g.observe(cl, rec)
	if status >= 500 {
		cl.logFailure(rec)
	}
	if !cl.authed {
		ok, n := cl.g.unauth.admit(cl.st.Config.Audit.UnauthenticatedRate, time.Now())
		if !ok {
			cl.g.deps.Metrics.AuditSampledOut()
			return nil
		}
		rec.SampledOut = n
	}
	werr := cl.g.deps.Audit.Write(cl.background(), rec)
	if werr != nil {
		cl.g.deps.Logger.Error("writing audit record", "request_id", cl.id, "err", werr)
		if !cl.st.Config.Audit.FailOpen {
			return werr
		}
	}
	return nil
}

// auditRecord is the call's audit record: who, what, the outcome (by,
// when set, overrides who decided), usage, timings, the error the client
// got with the cause behind a 5xx, and the plugins' verdicts.
func (cl *call) auditRecord(status int, err error, by string) *audit.Record {
	dec, who := decision(err)
	if by != "" {
		who = by
	}
	total := since(cl.start)
	rec := &audit.Record{
		RequestID:         cl.id,
		Client:            cl.who.ClientID,
		User:              cl.who.User,
		Endpoint:          cl.endpoint,
		Route:             cl.route,
		Model:             cl.model,
		Stream:            cl.stream,
		Status:            status,
		Decision:          dec,
		DecidedBy:         who,
		InputTokens:       cl.usage.InputTokens,
		OutputTokens:      cl.usage.OutputTokens,
		CacheReadTokens:   cl.usage.CacheReadInputTokens,
		CacheWriteTokens:  cl.usage.CacheCreationInputTokens,
		CostUSD:           cl.cost,
		Latency:           total,
		GatewayLatency:    total - cl.upstreamTime,
		UpstreamRequestID: cl.upstreamID,
		Input:             cl.input.String(),
		Output:            cl.output.String(),
	}
	if cl.ip.IsValid() {
		rec.SourceIP = cl.ip.String()
	}
	if err != nil {
		told := toAPI(err)
		rec.Error = told.Message
		if status >= 500 {
			rec.Cause = causeOf(err, told)
		}
	}
	if len(cl.verdicts) > 0 {
		rec.Plugins = make([]audit.PluginVerdict, 0, len(cl.verdicts))
	}
	for _, v := range cl.verdicts {
		rec.Plugins = append(rec.Plugins, audit.PluginVerdict{Name: v.Plugin, Phase: string(v.Phase), Action: string(v.Action), Reason: v.Reason, Cause: string(v.Cause), Duration: v.Duration})
	}
	return rec
}

// causeOf is what err says beyond told, the error the client gets: ""
// when told's message is the whole story, else err's full text, which names
// each step it went through and the cause of its fault.
func causeOf(err error, told *apiError) string {
	if msg := err.Error(); msg != told.Message {
		return msg
	}
	return ""
}

// logFailure logs a 5xx once, when its record is made (record runs once
// per call): what the client was told, and the cause behind it, with the
// request id the client saw. Failures the upstream decided are warnings;
// moat's own are errors.
func (cl *call) logFailure(rec *audit.Record) {
	level := slog.LevelError
	if rec.DecidedBy == audit.ByUpstream {
		level = slog.LevelWarn
	}
	cause := rec.Cause
	if cause == "" {
		cause = rec.Error
	}
	cl.g.deps.Logger.Log(cl.background(), level, "request failed",
		"request_id", cl.id, "status", rec.Status, "endpoint", rec.Endpoint, "route", rec.Route,
		"client", rec.Client, "decided_by", rec.DecidedBy, "error", rec.Error, "cause", cl.scrubber().String(cause))
}

// fail records and sends an error response.
func (cl *call) fail(err error) {
	// A call refused after upstream calls used tokens (a route whose
	// output failed validation, even after repair) is charged for them;
	// releasing the reservation would let such calls overrun a budget.
	if u := cl.usage; cl.res != nil && u.InputTokens+u.OutputTokens+u.CacheCreationInputTokens+u.CacheReadInputTokens > 0 {
		cl.settle()
	}
	ae := toAPI(err)
	if werr := cl.record(ae.Status, err, cl.refusedBy); werr != nil {
		ae = toAPI(auditFailure(werr))
	}
	cl.g.writeError(cl.c, cl.id, cl.cleanError(ae))
}

// writeError sends an Anthropic-shaped error.
func (g *Gateway) writeError(c *gin.Context, requestID string, e *apiError) {
	if c.Writer.Written() {
		return
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			c.Writer.Header().Add(k, v)
		}
	}
	status := e.Status
	if status == statusClientGone {
		status = http.StatusBadRequest
	}
	if status == http.StatusTooManyRequests && c.Writer.Header().Get("retry-after") == "" {
		c.Header("retry-after", "1")
	}
	c.Header("content-type", "application/json")
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(e.body(requestID))
}
