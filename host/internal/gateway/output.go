package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/host/internal/streamguard"
	"github.com/moat-gateway/moat/sdk/abi"
)

// This file connects a call to the stream guard (host/internal/streamguard),
// which applies the output stages and the key scrubber to everything the
// client receives: response blocks, stream deltas and upstream error
// messages.

// checkRelay refuses a relay_unknown_types entry that names a type moat
// judges: listing it would not relay it unjudged, and says the operator
// misread what it does.
func checkRelay(cfg *config.Config) error {
	for _, n := range cfg.Upstream.RelayUnknownTypes {
		if anthropic.KnownBlockType(n) || anthropic.KnownDeltaType(n) || anthropic.KnownEventType(n) {
			return fmt.Errorf("upstream.relay_unknown_types: %q is a type moat judges; only unknown types can be relayed", n)
		}
	}
	return nil
}

// relay returns the unknown types relayed (upstream.relay_unknown_types),
// the set the state built once.
func (cl *call) relay() anthropic.Relay { return cl.st.relayBlocks }

// scrubber masks the upstream keys (current and previous), the key the
// caller presented, and anything key-shaped.
func (cl *call) scrubber() *scrub.Scrubber {
	if cl.scrub != nil {
		return cl.scrub
	}
	secrets := cl.g.deps.Secrets()
	h := cl.c.Request.Header
	for _, v := range h.Values("X-Api-Key") {
		secrets = append(secrets, strings.TrimSpace(v))
	}
	for _, v := range h.Values("Authorization") {
		if tok, ok := strings.CutPrefix(strings.TrimSpace(v), "Bearer "); ok {
			secrets = append(secrets, strings.TrimSpace(tok))
		}
	}
	cl.scrub = scrub.New(secrets...)
	return cl.scrub
}

// newGuard returns the output guard of stages for the call (nil: none).
func (cl *call) newGuard(stages []streamguard.Stage, meta abi.Context) *streamguard.Guard {
	return streamguard.New(cl.c.Request.Context(), stages, meta, cl)
}

// outputJudge is the call's judge of what the client receives: guard (the
// output stages; nil when the client has none), then the scrubber.
func (cl *call) outputJudge(guard *streamguard.Guard) *streamguard.Judge {
	cl.guard = guard
	j := streamguard.NewJudge(guard, cl.scrubber(), &cl.verdicts)
	j.Keep = cl.keepOutput
	return j
}

// cleanError prepares an error for the client (streamguard.CleanError):
// an upstream error's message is judged by the call's guard, or the
// client's output chain when the call has none yet, and scrubbed.
func (cl *call) cleanError(ae *anthropic.Error) *anthropic.Error {
	if ae == nil {
		return nil
	}
	g := cl.guard
	if ae.Upstream && g == nil && cl.who.ClientID != "" {
		g = cl.newGuard(cl.st.client(cl.who.ClientID).chain, cl.outputMeta())
	}
	return streamguard.CleanError(ae, g, cl.scrubber())
}

// outputMeta is the plugin context of the call's output.
func (cl *call) outputMeta() abi.Context {
	return abi.Context{Route: cl.route, Model: cl.model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
}

// scrubBody masks keys in every string of a JSON body relayed as is
// (count_tokens, models). A body that does not parse is refused.
func (cl *call) scrubBody(b []byte) ([]byte, error) {
	out, err := anthropic.MapStrings(b, cl.scrubber().String)
	if err != nil {
		return nil, anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream returned a malformed response")
	}
	return out, nil
}
