package exchange

import (
	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/sdk/abi"
)

// runChain runs a chain and keeps its verdicts for the audit trail.
func (c *Call) runChain(chain pipeline.Chain, phase abi.Phase, text string, meta abi.Context) (string, error) {
	if len(chain) == 0 {
		return text, nil
	}
	out, recs, err := chain.Run(c.ctx, phase, text, meta)
	c.Add(recs)
	return out, err
}

// Add keeps plugin records for the audit trail (merged by plugin and
// phase) and logs their failures; it is the call's streamguard.Recorder.
func (c *Call) Add(recs []pipeline.Record) {
	c.verdicts.Add(recs)
	for _, r := range recs {
		if r.Cause == "" {
			continue
		}
		// One WARN line per failed plugin call, naming its cause; the
		// client only sees the generic message.
		c.deps.Logger.Warn("plugin failed", "plugin", r.Plugin, "phase", string(r.Phase), "cause", string(r.Cause),
			"duration", r.Duration, "request_id", c.ID, "outcome", string(r.Action))
	}
}

// meta is the plugin context of the call's request.
func (c *Call) meta(model string) abi.Context {
	return abi.Context{Model: model, Client: c.Who.ClientID, User: c.Who.User, RequestID: c.ID}
}

// prepareRequest makes req what the upstream reads: the input chain over
// every text, the client's wrapping and system policy, and the canary's
// instruction when canary is set. /v1/messages and count_tokens both send
// it, so a count is of what the model would read, and no text reaches
// Anthropic without the chain (redactors included).
func (c *Call) prepareRequest(req *anthropic.Request, chain pipeline.Chain, meta abi.Context, canary string) ([]byte, error) {
	client := c.ClientPolicy()
	if err := c.judgeRequest(req, chain, meta); err != nil {
		return nil, err
	}
	if client.WrapUserInput {
		wrapRequest(req, client.Tag)
	}
	extra := ""
	if canary != "" {
		extra = prompt.CanaryInstruction(canary)
	}
	req.ApplySystem(client.System, client.SystemPrompt, extra)
	return req.Encode()
}

// judgeRequest runs the input chain over every text the model reads (see
// anthropic/content.go). A trusted client authenticated by its key may
// exempt parts (config judge); a JWT caller's request is judged whole. A
// plugin that changes text which cannot change (a signed thinking block, a
// name in tool JSON) is refused in that plugin's name.
func (c *Call) judgeRequest(req *anthropic.Request, chain pipeline.Chain, meta abi.Context) error {
	client := c.ClientPolicy()
	exempt := c.Who.Via == auth.ViaKey && client.Trusted && len(client.Judge) > 0
	return req.EachText(func(seg anthropic.Segment, text string) (string, error) {
		if exempt && !client.Judges(seg.Part) {
			return text, nil
		}
		m := meta
		m.Kind, m.Role, m.Path = seg.Kind, seg.Role, seg.Path
		out, err := c.runChain(chain, abi.PhaseInput, text, m)
		if err != nil {
			return "", err
		}
		if seg.Fixed && out != text {
			return "", &pipeline.RejectError{Phase: abi.PhaseInput, Plugin: c.verdicts.LastModifier(abi.PhaseInput, "input chain"), Reason: seg.Path + ": a signed thinking block or a name in tool JSON cannot be changed; the plugin's change is refused"}
		}
		c.keepInput(out)
		return out, nil
	})
}

// wrapRequest encloses user data in tags it cannot close or forge, with
// the instruction once per message: the body grows by a bounded amount per
// block (two tags), not by a preamble per block.
func wrapRequest(req *anthropic.Request, tag string) {
	texts := make([]string, 0, req.Segments())
	_ = req.EachText(func(_ anthropic.Segment, text string) (string, error) {
		texts = append(texts, text)
		return text, nil
	})
	w := prompt.NewWrapper(tag, "", texts...)
	last := -1
	_ = req.EachText(func(seg anthropic.Segment, text string) (string, error) {
		if !seg.Wrap {
			return text, nil
		}
		if seg.Message != last {
			last = seg.Message
			return w.Block(text), nil
		}
		return w.Wrap(text), nil
	})
}
