package exchange

import (
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/host/internal/streamguard"
	"github.com/moat-gateway/moat/sdk/abi"
)

// scrubber masks the upstream keys (current and previous), the
// credentials the caller presented, and anything key-shaped.
func (c *Call) scrubber() *scrub.Scrubber {
	if c.scrub != nil {
		return c.scrub
	}
	secrets := c.deps.Secrets()
	for _, v := range c.Creds.Values("X-Api-Key") {
		secrets = append(secrets, strings.TrimSpace(v))
	}
	for _, v := range c.Creds.Values("Authorization") {
		if tok, ok := strings.CutPrefix(strings.TrimSpace(v), "Bearer "); ok {
			secrets = append(secrets, strings.TrimSpace(tok))
		}
	}
	c.scrub = scrub.New(secrets...)
	return c.scrub
}

// newGuard returns the output guard of stages for the call (nil: none).
func (c *Call) newGuard(stages []streamguard.Stage, meta abi.Context) *streamguard.Guard {
	return streamguard.New(c.ctx, stages, meta, c)
}

// outputJudge is the call's judge of what the client receives: guard (the
// output stages; nil when the client has none), then the scrubber.
func (c *Call) outputJudge(guard *streamguard.Guard) *streamguard.Judge {
	c.guard = guard
	j := streamguard.NewJudge(guard, c.scrubber(), &c.verdicts)
	j.Keep = c
	return j
}

// cleanError prepares an error for the client (streamguard.CleanMessage):
// an upstream error's message is judged by the call's guard, or the
// client's output chain when the call has none yet, and every message is
// scrubbed (an error type that is not one of the API's was already
// replaced by the edge's mapping).
func (c *Call) cleanError(ae *APIError) *APIError {
	if ae == nil {
		return nil
	}
	out := *ae
	g := c.guard
	if ae.Upstream && g == nil && c.Who.ClientID != "" {
		g = c.newGuard(c.pol.Chains(c.Who.ClientID).Output, c.outputMeta())
	}
	out.Message = streamguard.CleanMessage(ae.Message, ae.Upstream, g, c.scrubber())
	return &out
}

// outputMeta is the plugin context of the call's output.
func (c *Call) outputMeta() abi.Context {
	return abi.Context{Route: c.Route, Model: c.Model, Client: c.Who.ClientID, User: c.Who.User, RequestID: c.ID}
}

// ScrubBody masks keys in every string of a JSON body relayed as is
// (count_tokens, models). A body that does not parse is refused.
func (c *Call) ScrubBody(b []byte) ([]byte, error) {
	out, err := anthropic.MapStrings(b, c.scrubber().String)
	if err != nil {
		return nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	return out, nil
}
