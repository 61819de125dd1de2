package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/streamguard"
)

// call is one request at the HTTP edge: the exchange it runs
// (host/internal/exchange), and the Gin context it answers on. It is the
// exchange's Upstream and Response.
type call struct {
	exchange.Call
	g  *Gateway
	st *State
	c  *gin.Context
	// stopped ends the call's count in moat_requests_in_flight.
	stopped func()
	// sink is the call's event stream, if it streamed (released at end).
	sink *sseSink
}

func (g *Gateway) begin(c *gin.Context, endpoint string) *call {
	g.inflight.add()
	st := g.state.Load()
	for !st.refs.acquire() {
		// Swapped and drained between the load and the acquire: the
		// pointer already holds the next state.
		st = g.state.Load()
	}
	cl := &call{g: g, st: st, c: c, stopped: g.deps.Metrics.Start()}
	cl.Start, cl.ID, cl.IP, cl.Endpoint, cl.Creds = time.Now(), requestIDOf(c), clientIP(c.Request, st.trusted), endpoint, c.Request.Header
	cl.Begin(&g.x, &st.policy, c.Request.Context(), cl, cl)
	return cl
}

// hdrRequestID is the response header naming moat's request id, in
// canonical form.
const hdrRequestID = "X-Moat-Request-Id"

// end releases what the call holds. It runs deferred in every handler.
func (cl *call) end() {
	cl.End()
	if cl.sink != nil {
		cl.sink.w.Release()
	}
	cl.st.refs.release()
	cl.g.inflight.release()
	cl.stopped()
}

// authenticate identifies the caller. Credentials are checked first: a
// request with a valid key or JWT is served whatever failed before from
// its address. Only a request that fails to authenticate meets the lockout
// (limits.auth_fail_rate, counted per address and per presented
// credential): past the rate for either it gets a 429 instead of a 401. A 400 (a valid credential naming a malformed
// user id) is not a failed authentication.
func (cl *call) authenticate() error {
	r := cl.c.Request
	who, err := cl.st.Auth.Authenticate(r, cl.IP)
	if err != nil {
		if errors.Is(err, fault.InvalidRequest) {
			return err
		}
		// A recognized key (revoked, expired, wrong address) names its
		// client in the record.
		cl.Who = auth.Identity{ClientID: who.ClientID, KeyHash: who.KeyHash}
		return cl.authFailed(r, err)
	}
	cl.Who, cl.Authed = who, true
	if who.Via == auth.ViaKey && cl.IP.IsValid() {
		// JWTs are left out: each token differs, and users roam.
		cl.g.deps.Anomaly.KeyUse(who.ClientID, who.KeyHash, cl.IP.String(), time.Now())
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
	if cl.IP.IsValid() {
		ip = cl.IP.String()
		cl.g.deps.Anomaly.AuthFailure(ip, time.Now())
	}
	lim := cl.g.deps.Limiter
	if lim == nil {
		return err
	}
	if lerr := lim.AuthFailure(r.Context(), ip, auth.CredentialHash(r.Header)); lerr != nil {
		return lerr
	}
	return err
}

// Send implements exchange.Upstream: the request goes out with the
// caller's relayed headers and query, the answer's status tells whether
// the upstream accepts moat's key, and its relayed headers reach the
// client.
func (cl *call) Send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	if method == http.MethodPost {
		path += cl.forwardQuery()
	}
	resp, _, err := cl.st.Upstream.Do(ctx, method, path, body, cl.forwardHeaders())
	if err != nil {
		cl.g.upstreamError(err)
		return nil, err
	}
	cl.g.noteUpstream(resp.StatusCode)
	copyResponseHeaders(cl.c.Writer.Header(), resp.Header)
	return resp, nil
}

// Header implements exchange.Response.
func (cl *call) Header() http.Header { return cl.c.Writer.Header() }

// JSON implements exchange.Response.
func (cl *call) JSON(body []byte) { cl.c.Data(http.StatusOK, "application/json", body) }

// Stream implements exchange.Response: a 200 event stream.
func (cl *call) Stream() streamguard.Sink {
	h := cl.c.Writer.Header()
	h.Set("content-type", "text/event-stream; charset=utf-8")
	h.Set("cache-control", "no-cache")
	h.Set("x-accel-buffering", "no")
	cl.c.Writer.WriteHeader(http.StatusOK)
	cl.sink = &sseSink{w: anthropic.NewEventWriter(cl.c.Writer)}
	return cl.sink
}

// sseSink is the streamguard.Sink that re-emits Anthropic's events to the
// client.
type sseSink struct{ w *anthropic.EventWriter }

func (s *sseSink) Event(ev anthropic.Event) error { return s.w.Write(ev) }
func (s *sseSink) Fail(ev anthropic.Event)        { _ = s.w.Write(ev); _ = s.w.Flush() }
func (s *sseSink) Flush() error                   { return s.w.Flush() }

// fail records the call's failure and sends its error.
func (cl *call) fail(err error) {
	cl.g.writeError(cl.c, cl.ID, cl.Fail(err))
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
	_, _ = c.Writer.Write(e.Body(requestID))
}
