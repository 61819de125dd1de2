package exchange

import (
	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/internal/streamguard"
)

// CheckModel refuses a model the client may not use.
func (c *Call) CheckModel(model string) error {
	if !c.ClientPolicy().AllowsModel(model) {
		return fault.New(fault.Forbidden, "model: client %q may not use model %q", c.Who.ClientID, model)
	}
	return nil
}

// checkMessagesRequest applies the client's rules to a /v1/messages
// request: its models, its max_tokens cap, a pinned system prompt, and
// metadata.user_id (which names a trusted client's end user).
func (c *Call) checkMessagesRequest(req *anthropic.Request) error {
	client := c.ClientPolicy()
	if err := c.CheckModel(req.Model); err != nil {
		return err
	}
	if client.MaxTokens > 0 && req.MaxTokens > int64(client.MaxTokens) {
		return anthropic.InvalidRequest("max_tokens: %d exceeds this client's cap of %d", req.MaxTokens, client.MaxTokens)
	}
	if req.SystemMessages() > 0 && client.System == anthropic.SystemPin {
		return anthropic.InvalidRequest("messages: system-role messages are refused: client %q's system prompt is set by the gateway (system = \"pin\")", c.Who.ClientID)
	}
	if u := req.UserID(); u != "" {
		// Checked for every client: the id is relayed upstream as well
		// as naming a trusted client's end user.
		if err := auth.CheckUserID("metadata.user_id", u); err != nil {
			return err
		}
		if c.Who.User == "" && client.Trusted {
			c.Who.User = u
		}
	}
	return nil
}

// decode decodes and checks a Messages request body and admits the call.
func (c *Call) decode(body []byte, opts anthropic.Options) (*anthropic.Request, error) {
	opts.RelayBlocks = c.pol.Relay
	req, err := anthropic.DecodeRequest(body, opts)
	if err != nil {
		return nil, err
	}
	c.Model = req.Model
	if !opts.CountTokens {
		c.Stream = req.Stream
	}
	if err := c.checkMessagesRequest(req); err != nil {
		return nil, err
	}
	return req, c.Admit()
}

// Messages serves a /v1/messages body: admit, reserve, the input chain,
// the upstream, the output guard (streamed or whole), settle and record.
func (c *Call) Messages(body []byte) error {
	req, err := c.decode(body, anthropic.Options{})
	if err != nil {
		return err
	}
	if err := c.Reserve(req.Model, req.EstimateInputTokens(), req.MaxTokens); err != nil {
		return err
	}
	chains := c.pol.Chains(c.Who.ClientID)
	meta := c.meta(req.Model)
	canary := ""
	if c.ClientPolicy().Canary {
		canary = prompt.NewCanary()
	}
	out, err := c.prepareRequest(req, chains.Input, meta, canary)
	if err != nil {
		return err
	}
	guard := c.newGuard(chains.Stages(canary), meta)
	if req.Stream {
		return c.relayStream(out, guard)
	}
	b, err := c.post("/v1/messages", out)
	if err != nil {
		return err
	}
	return c.finishMessage(b, guard)
}

// finishMessage judges and sends a non-streaming response: every string
// the client receives goes through the output guard (the output chain and
// the canary when the client has them) and the key scrubber.
func (c *Call) finishMessage(body []byte, guard *streamguard.Guard) error {
	msg, err := anthropic.DecodeResponse(body)
	if err != nil {
		return fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	c.usage = c.usage.Add(msg.Usage)
	c.Settle()
	if err := msg.Judge(c.outputJudge(guard), c.pol.Relay); err != nil {
		return streamguard.OutputFailure(err)
	}
	out, err := msg.Encode()
	if err != nil {
		return err
	}
	return c.Respond(out)
}

// CountTokens serves a /v1/messages/count_tokens body: the request is
// checked and prepared as Messages prepares it (input chain, wrapping,
// system policy), so the count is of what the model would read and no
// unjudged text reaches Anthropic.
func (c *Call) CountTokens(body []byte) error {
	req, err := c.decode(body, anthropic.Options{CountTokens: true})
	if err != nil {
		return err
	}
	out, err := c.prepareRequest(req, c.pol.Chains(c.Who.ClientID).Input, c.meta(req.Model), "")
	if err != nil {
		return err
	}
	b, err := c.post("/v1/messages/count_tokens", out)
	if err != nil {
		return err
	}
	if b, err = c.ScrubBody(b); err != nil {
		return err
	}
	return c.Respond(b)
}
