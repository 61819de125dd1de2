package exchange

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/anomaly"
	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/metrics"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/host/internal/streamguard"
)

// Deps are the long-lived components an exchange calls, shared by every
// call. Limiter and Logger are required; a nil Audit, Metrics or Anomaly
// disables that component.
type Deps struct {
	Limiter *limit.Limiter
	Audit   *audit.Logger
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Anomaly *anomaly.Detector
	// Secrets returns the values that must never be echoed (the upstream
	// keys, current and previous).
	Secrets func() []string
	// Told maps an error to the error the client is told, and Decide to
	// the audit decision and who decided: the edge's one mapping.
	Told   func(error) *APIError
	Decide func(error) (decision, by string)
	// Sample admits the audit line of an unauthenticated call under the
	// rate (audit.unauthenticated_rate), with the count left out before
	// it; nil admits every line.
	Sample func(rate string, now time.Time) (ok bool, sampledOut int64)
}

// Policy is what one config says about calls: its options, the unknown
// types relayed, and each client's policy and chains. It is built once per
// config.
type Policy struct {
	Options
	// Relay are the block, delta and event types relayed outside the
	// content model (upstream.relay_unknown_types).
	Relay anthropic.Relay
	// Chains returns the chains of a client id.
	Chains func(client string) *Chains
	// Clients returns the policy of a client id, nil for none (a caller
	// that is no configured client gets the zero Client).
	Clients func(client string) *Client
}

// Chains are the plugins of a client or route: its input chain and its
// output stages.
type Chains struct {
	Input pipeline.Chain
	// Output is the output chain's stages; Schema, when set, the JSON
	// answer's validator (format = "json").
	Output []streamguard.Stage
	Schema *streamguard.Stage
}

// Stages returns the stages of one call's output guard: the schema
// validator, the output chain, and the canary when canary is set.
func (c *Chains) Stages(canary string) []streamguard.Stage {
	if c.Schema == nil && canary == "" {
		return c.Output
	}
	out := make([]streamguard.Stage, 0, len(c.Output)+2)
	if c.Schema != nil {
		out = append(out, *c.Schema)
	}
	out = append(out, c.Output...)
	if canary != "" {
		out = append(out, streamguard.Canary(canary))
	}
	return out
}

// Upstream sends a call's requests to the API; the edge's implementation
// adds the caller's relayed headers and query, and passes the answer's
// relayed headers to the client.
type Upstream interface {
	Send(ctx context.Context, method, path string, body []byte) (*http.Response, error)
}

// Response is where the call's answer goes.
type Response interface {
	// Header is the client's response header, before the answer starts.
	Header() http.Header
	// JSON sends a 200 with a JSON body.
	JSON(body []byte)
	// Stream starts a 200 event stream and returns its sink.
	Stream() streamguard.Sink
}

// Call is one request on its way through the exchange: what is known about
// it so far, and what must be undone or recorded at the end. The edge sets
// the exported fields it knows before the exchange runs.
type Call struct {
	deps *Deps
	pol  *Policy
	ctx  context.Context
	up   Upstream
	resp Response

	Start time.Time
	ID    string
	IP    netip.Addr
	// Creds are the request's headers: the credentials the caller
	// presented there (x-api-key, a bearer token) are masked in
	// everything it receives.
	Creds http.Header

	Endpoint string
	Route    string
	Model    string
	Stream   bool
	Who      auth.Identity
	// Authed is set once the caller authenticated; the audit lines of
	// calls without it are sampled (audit.unauthenticated_rate).
	Authed   bool
	ticket   *limit.Ticket
	res      *limit.Reservation
	verdicts pipeline.Verdicts
	usage    anthropic.Usage
	cost     float64
	input    strings.Builder
	output   strings.Builder

	upstreamID   string
	upstreamTime time.Duration
	finished     bool

	// guard is the output guard of the call, once built; scrub masks keys
	// in what the client receives.
	guard *streamguard.Guard
	scrub *scrub.Scrubber
	// detached is ctx without its cancellation, made once: settling,
	// releasing and auditing finish when the client leaves.
	detached context.Context
}

// Begin readies c for a request: ctx is the client's (its end is the
// client leaving), up and resp the edge's.
func (c *Call) Begin(deps *Deps, pol *Policy, ctx context.Context, up Upstream, resp Response) {
	c.deps, c.pol, c.ctx, c.up, c.resp = deps, pol, ctx, up, resp
}

// End releases what the call holds. The edge defers it.
func (c *Call) End() {
	if c.res != nil {
		c.res.Release(c.background())
	}
	if c.ticket != nil {
		c.ticket.Done()
	}
}

// background returns the request's context without its cancellation.
func (c *Call) background() context.Context {
	if c.detached == nil {
		c.detached = context.WithoutCancel(c.ctx)
	}
	return c.detached
}

// keepContent reports whether the audit trail stores content, so the call
// must collect it.
func (c *Call) keepContent() bool { return c.pol.KeepContent }

// keepInput and KeepOutput collect content for the audit trail;
// KeepOutput makes the call a streamguard.Keeper.
func (c *Call) keepInput(s string) {
	if c.keepContent() {
		c.input.WriteString(s)
	}
}

func (c *Call) KeepOutput(s string) {
	if c.keepContent() {
		c.output.WriteString(s)
	}
}
