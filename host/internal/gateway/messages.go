package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/sdk/abi"
)

// readBody reads the request body up to the configured cap.
func (cl *call) readBody() ([]byte, error) {
	max := cl.st.Config.Server.MaxBodyBytes
	r := http.MaxBytesReader(cl.c.Writer, cl.c.Request.Body, max)
	b, err := readAll(r, cl.c.Request.ContentLength, max)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault.New(fault.TooLarge, "request body exceeds the %d-byte limit", max)
		}
		return nil, anthropic.InvalidRequest("reading request body: %s", "connection error")
	}
	return b, nil
}

// handle returns the Gin handler for one endpoint: a call is begun,
// served, and on error recorded and answered in Anthropic's shape.
func (g *Gateway) handle(endpoint string, serve func(*call) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl := g.begin(c, endpoint)
		defer cl.end()
		defer cl.recoverPanic()
		if err := serve(cl); err != nil {
			cl.fail(err)
		}
	}
}

// recoverPanic, deferred in every handler, turns a panic into the call's
// failure: a 500 "internal error" to the client (unless a response was
// already under way), the panic in the audit record and the log, and its
// stack in the log.
func (cl *call) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	cl.g.deps.Logger.Error("panic serving request", "request_id", cl.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	cl.fail(fmt.Errorf("serving %s: panic: %v", cl.endpoint, v))
}

// identify authenticates the caller (see authenticate for the lockout)
// and checks the betas it asks for.
func (cl *call) identify() error {
	if err := cl.authenticate(); err != nil {
		return err
	}
	return cl.checkBetas()
}

// checkModel refuses a model the client may not use.
func (cl *call) checkModel(model string) error {
	if !cl.who.Client.AllowsModel(model) {
		return fault.New(fault.Forbidden, "model: client %q may not use model %q", cl.who.ClientID, model)
	}
	return nil
}

// respond writes the audit record, then the JSON body; when the record
// cannot be written (and audit is fail-closed) the client gets a 503.
func (cl *call) respond(body []byte) error {
	if err := cl.record(http.StatusOK, nil, ""); err != nil {
		return auditFailure(err)
	}
	cl.c.Data(http.StatusOK, "application/json", body)
	return nil
}

// checkMessagesRequest applies the client's rules to a /v1/messages
// request: its models, its max_tokens cap, a pinned system prompt, and
// metadata.user_id (which names a trusted client's end user).
func (cl *call) checkMessagesRequest(req *anthropic.Request) error {
	client := cl.who.Client
	if err := cl.checkModel(req.Model); err != nil {
		return err
	}
	if client.MaxTokens > 0 && req.MaxTokens > int64(client.MaxTokens) {
		return anthropic.InvalidRequest("max_tokens: %d exceeds this client's cap of %d", req.MaxTokens, client.MaxTokens)
	}
	if req.SystemMessages() > 0 && client.System == anthropic.SystemPin {
		return anthropic.InvalidRequest("messages: system-role messages are refused: client %q's system prompt is set by the gateway (system = \"pin\")", cl.who.ClientID)
	}
	if u := req.UserID(); u != "" {
		// Checked for every client: the id is relayed upstream as well
		// as naming a trusted client's end user.
		if err := auth.CheckUserID("metadata.user_id", u); err != nil {
			cl.refusedBy = audit.ByAuth // an identity auth refused, as in its header
			return err
		}
		if cl.who.User == "" && client.Trusted {
			cl.who.User = u
		}
	}
	return nil
}

func (cl *call) serveMessages() error {
	if err := cl.identify(); err != nil {
		return err
	}
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	req, err := anthropic.DecodeRequest(body, anthropic.Options{RelayBlocks: cl.st.relayBlocks})
	if err != nil {
		return err
	}
	cl.model, cl.stream = req.Model, req.Stream
	client := cl.who.Client
	if err := cl.checkMessagesRequest(req); err != nil {
		return err
	}
	if err := cl.admit(); err != nil {
		return err
	}
	if err := cl.reserve(req.Model, req.EstimateInputTokens(), req.MaxTokens); err != nil {
		return err
	}
	cs := cl.st.client(cl.who.ClientID)
	meta := abi.Context{Model: req.Model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
	canary := ""
	if client.Canary {
		canary = prompt.NewCanary()
	}
	out, err := cl.prepareRequest(req, cs.input, meta, canary)
	if err != nil {
		return err
	}
	guard := cl.st.outputGuard(cs, canary, meta)
	if req.Stream {
		return cl.relayStream(out, guard)
	}
	resp, err := cl.callUpstream("/v1/messages", out)
	if err != nil {
		return err
	}
	return cl.finishMessage(resp, guard)
}

// prepareRequest makes req what the upstream reads: the input chain over
// every text, the client's wrapping and system policy, and the canary's
// instruction when canary is set. /v1/messages and count_tokens both send
// it, so a count is of what the model would read, and no text reaches
// Anthropic without the chain (redactors included).
func (cl *call) prepareRequest(req *anthropic.Request, chain pipeline.Chain, meta abi.Context, canary string) ([]byte, error) {
	client := cl.who.Client
	if err := cl.judgeRequest(req, chain, meta); err != nil {
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
func (cl *call) judgeRequest(req *anthropic.Request, chain pipeline.Chain, meta abi.Context) error {
	client := cl.who.Client
	exempt := cl.who.Via == auth.ViaKey && client.Trusted && len(client.Judge) > 0
	return req.EachText(func(seg anthropic.Segment, text string) (string, error) {
		if exempt && !client.Judges(seg.Part) {
			return text, nil
		}
		m := meta
		m.Kind, m.Role, m.Path = seg.Kind, seg.Role, seg.Path
		out, err := cl.runChain(chain, abi.PhaseInput, text, m)
		if err != nil {
			return "", err
		}
		if seg.Fixed && out != text {
			return "", &pipeline.RejectError{Phase: abi.PhaseInput, Plugin: lastModifier(cl.verdicts), Reason: seg.Path + ": a signed thinking block or a name in tool JSON cannot be changed; the plugin's change is refused"}
		}
		cl.keepInput(out)
		return out, nil
	})
}

// lastModifier names the plugin whose modify verdict is the latest.
func lastModifier(recs []pipeline.Record) string {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Action == abi.Modify {
			return recs[i].Plugin
		}
	}
	return "input chain"
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

// upstreamResponse is a finished or open upstream response.
type upstreamResponse struct {
	*http.Response
	cancel context.CancelFunc
}

// callUpstream sends the body and returns the response with its headers
// copied to the client.
func (cl *call) callUpstream(path string, body []byte) (*upstreamResponse, error) {
	ctx := cl.c.Request.Context()
	var cancel context.CancelFunc
	if cl.stream {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, cl.st.Config.Upstream.Timeout.Duration)
	}
	t0 := time.Now()
	resp, _, err := cl.st.Upstream.Do(ctx, http.MethodPost, path+cl.forwardQuery(), body, cl.forwardHeaders())
	cl.upstreamTime += time.Since(t0)
	if err != nil {
		cancel()
		cl.g.upstreamError(err)
		return nil, err
	}
	cl.upstreamID = firstValue(resp.Header, "Request-Id")
	cl.g.noteUpstream(resp.StatusCode)
	copyResponseHeaders(cl.c.Writer.Header(), resp.Header)
	return &upstreamResponse{Response: resp, cancel: cancel}, nil
}

// readUpstream reads a non-streaming body within the configured cap.
func (cl *call) readUpstream(resp *upstreamResponse) ([]byte, error) {
	defer resp.cancel()
	defer resp.Body.Close()
	max := cl.st.Config.Upstream.MaxResponseBytes
	t0 := time.Now()
	b, err := readAll(io.LimitReader(resp.Body, max+1), resp.ContentLength, max+1)
	cl.upstreamTime += time.Since(t0)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fault.New(fault.UpstreamTimeout, "upstream timed out")
		}
		if cl.c.Request.Context().Err() != nil {
			// The client left: the upstream read was cancelled with it.
			return nil, fault.New(fault.ClientGone, "client disconnected")
		}
		return nil, fault.New(fault.UpstreamFailed, "reading upstream response: connection failed")
	}
	if int64(len(b)) > max {
		return nil, fault.New(fault.UpstreamFailed, "upstream response exceeds the %d-byte limit", max)
	}
	return b, nil
}

// finishMessage validates and sends a non-streaming response.
func (cl *call) finishMessage(resp *upstreamResponse, guard *outputGuard) error {
	body, err := cl.readUpstream(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return upstreamFailure(resp.StatusCode, body)
	}
	// Every string the client receives is judged (anthropic/output.go):
	// the output chain and the canary when the client has them, and the
	// key scrubber always.
	msg, err := anthropic.DecodeResponse(body)
	if err != nil {
		return fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	cl.usage = cl.usage.Add(msg.Usage)
	cl.settle()
	if err := msg.Judge(cl.outputJudge(guard), cl.relay()); err != nil {
		return outputFailure(err)
	}
	out, err := msg.Encode()
	if err != nil {
		return err
	}
	return cl.respond(out)
}

// serveCountTokens serves POST /v1/messages/count_tokens: the request is
// checked and prepared as /v1/messages prepares it (input chain, wrapping,
// system policy), so the count is of what the model would read and no
// unjudged text reaches Anthropic.
func (cl *call) serveCountTokens() error {
	if err := cl.identify(); err != nil {
		return err
	}
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	req, err := anthropic.DecodeRequest(body, anthropic.Options{CountTokens: true, RelayBlocks: cl.st.relayBlocks})
	if err != nil {
		return err
	}
	cl.model = req.Model
	if err := cl.checkMessagesRequest(req); err != nil {
		return err
	}
	if err := cl.admit(); err != nil {
		return err
	}
	meta := abi.Context{Model: req.Model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
	out, err := cl.prepareRequest(req, cl.st.client(cl.who.ClientID).input, meta, "")
	if err != nil {
		return err
	}
	resp, err := cl.callUpstream("/v1/messages/count_tokens", out)
	if err != nil {
		return err
	}
	b, err := cl.readUpstream(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return upstreamFailure(resp.StatusCode, b)
	}
	if b, err = cl.scrubBody(b); err != nil {
		return err
	}
	return cl.respond(b)
}

// modelsPath builds the upstream path of a models call from the parsed
// (decoded) model id and query, re-encoding both: an id holding "/", "?",
// "#" or "%" (sent encoded) stays one path segment upstream instead of
// changing the path or starting a query, and "." and ".." (which an
// upstream could resolve as path steps) are refused as no model.
func modelsPath(id, rawQuery string) (string, error) {
	p := "/v1/models"
	if id != "" {
		if id == "." || id == ".." {
			return "", fault.New(fault.NotFound, "model: %s", id)
		}
		p += "/" + url.PathEscape(id)
	}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return "", anthropic.InvalidRequest("query string: %s", "malformed")
		}
		p += "?" + q.Encode()
	}
	return p, nil
}

// serveModels serves GET /v1/models and /v1/models/{id}, filtered to the
// client's allowed models.
func (cl *call) serveModels() error {
	if err := cl.identify(); err != nil {
		return err
	}
	path, err := modelsPath(cl.c.Param("id"), cl.c.Request.URL.RawQuery)
	if err != nil {
		return err
	}
	if id := cl.c.Param("id"); id != "" && !cl.who.Client.AllowsModel(id) {
		return fault.New(fault.NotFound, "model: %s", id)
	}
	if cl.c.Param("id") == "" && len(cl.who.Client.Models) > 0 {
		return cl.serveFilteredModels()
	}
	b, err := cl.getUpstream(path)
	if err != nil {
		return err
	}
	if b, err = cl.scrubBody(b); err != nil {
		return err
	}
	return cl.respond(b)
}

var _ = audit.DecisionAllow
