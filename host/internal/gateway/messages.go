package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
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
			return nil, anthropic.Errorf(http.StatusRequestEntityTooLarge, anthropic.TypeRequestTooLarge, "request body exceeds the %d-byte limit", max)
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
		if err := serve(cl); err != nil {
			cl.fail(err)
		}
	}
}

// identify refuses addresses that failed authentication too often, then
// authenticates the caller.
func (cl *call) identify() error {
	if err := cl.preAuthGuard(); err != nil {
		return err
	}
	return cl.authenticate()
}

// checkModel refuses a model the client may not use.
func (cl *call) checkModel(model string) error {
	if !cl.who.Client.AllowsModel(model) {
		return anthropic.Errorf(http.StatusForbidden, anthropic.TypePermission, "model: client %q may not use model %q", cl.who.ClientID, model)
	}
	return nil
}

// respond writes the audit record, then the JSON body; when the record
// cannot be written (and audit is fail-closed) the client gets a 503.
func (cl *call) respond(body []byte) error {
	if err := cl.record(http.StatusOK, nil, ""); err != nil {
		return auditUnavailable()
	}
	cl.c.Data(http.StatusOK, "application/json", body)
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
	req, err := anthropic.DecodeRequest(body, anthropic.Options{})
	if err != nil {
		return err
	}
	cl.model, cl.stream = req.Model, req.Stream
	client := cl.who.Client
	if err := cl.checkModel(req.Model); err != nil {
		return err
	}
	if client.MaxTokens > 0 && req.MaxTokens > int64(client.MaxTokens) {
		return anthropic.InvalidRequest("max_tokens: %d exceeds this client's cap of %d", req.MaxTokens, client.MaxTokens)
	}
	if cl.who.User == "" && client.Trusted {
		cl.who.User = req.UserID()
	}
	if err := cl.admit(); err != nil {
		return err
	}
	if err := cl.reserve(req.Model, req.EstimateInputTokens(), req.MaxTokens); err != nil {
		return err
	}
	cs := cl.st.client(cl.who.ClientID)
	meta := abi.Context{Model: req.Model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
	if err := req.EachUserText(func(text string) (string, error) {
		out, err := cl.runChain(cs.input, abi.PhaseInput, text, meta)
		cl.keepInput(out)
		return out, err
	}); err != nil {
		return err
	}
	var extra []string
	if client.WrapUserInput {
		var texts []string
		_ = req.EachUserText(func(text string) (string, error) { texts = append(texts, text); return text, nil })
		w := prompt.NewWrapper(client.Tag, "", texts...)
		if err := req.EachUserText(func(text string) (string, error) { return w.Block(text), nil }); err != nil {
			return err
		}
	}
	canary := ""
	if client.Canary {
		canary = prompt.NewCanary()
		extra = append(extra, prompt.CanaryInstruction(canary))
	}
	req.ApplySystem(client.System, client.SystemPrompt, strings.Join(extra, "\n\n"))
	out, err := req.Encode()
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

// forwardHeaders picks the request headers the upstream may see: the API
// version and allowed betas. Client credentials and hop-by-hop headers are
// never forwarded.
func (cl *call) forwardHeaders() http.Header {
	// The server hands over canonical keys, and the keys set here are
	// canonical: direct map access saves a canonicalization per header.
	in := cl.c.Request.Header
	h := make(http.Header, 4)
	h["Content-Type"] = contentTypeJSON
	if v := in["Anthropic-Version"]; len(v) > 0 && v[0] != "" {
		h["Anthropic-Version"] = []string{v[0]}
	} else {
		h["Anthropic-Version"] = defaultVersion
	}
	allowed := cl.st.Config.Server.AllowedBetas
	var betas []string
	for _, line := range in["Anthropic-Beta"] {
		for _, b := range strings.Split(line, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			if len(allowed) == 0 || contains(allowed, b) {
				betas = append(betas, b)
			}
		}
	}
	if len(betas) > 0 {
		h["Anthropic-Beta"] = []string{strings.Join(betas, ",")}
	}
	return h
}

// Header values shared by every upstream request; the upstream client
// only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	defaultVersion  = []string{"2023-06-01"}
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
	resp, _, err := cl.g.deps.Upstream.Do(ctx, http.MethodPost, path, body, cl.forwardHeaders())
	cl.upstreamTime += time.Since(t0)
	if err != nil {
		cancel()
		cl.g.upstreamError(err)
		return nil, err
	}
	cl.upstreamID = firstValue(resp.Header, "Request-Id")
	copyResponseHeaders(cl.c.Writer.Header(), resp.Header)
	return &upstreamResponse{Response: resp, cancel: cancel}, nil
}

// copyResponseHeaders passes the upstream's request id, rate-limit and
// retry headers to the client.
func copyResponseHeaders(dst, src http.Header) {
	for k, vs := range src {
		if passedResponseHeader(k) {
			dst[k] = vs
		}
	}
}

// passedResponseHeader reports, without allocating, whether the upstream
// response header k reaches the client: request-id, retry-after and the
// anthropic-ratelimit-* family, in any case.
func passedResponseHeader(k string) bool {
	const rl = "anthropic-ratelimit-"
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 {
			// Not an HTTP token (the client refuses such names); lower-case
			// it as before, where Unicode case mapping applies.
			lk := strings.ToLower(k)
			return lk == "request-id" || lk == "retry-after" || strings.HasPrefix(lk, rl)
		}
	}
	return strings.EqualFold(k, "request-id") || strings.EqualFold(k, "retry-after") ||
		len(k) >= len(rl) && strings.EqualFold(k[:len(rl)], rl)
}

// firstValue is h.Get(key) for a key already in canonical form (as the
// HTTP client stores response headers), without canonicalizing it again.
func firstValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
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
			return nil, anthropic.Errorf(http.StatusGatewayTimeout, anthropic.TypeAPI, "upstream timed out")
		}
		if cl.c.Request.Context().Err() != nil {
			// The client left: the upstream read was cancelled with it.
			return nil, anthropic.Errorf(499, anthropic.TypeAPI, "client disconnected")
		}
		return nil, anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "reading upstream response: connection failed")
	}
	if int64(len(b)) > max {
		return nil, anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream response exceeds the %d-byte limit", max)
	}
	return b, nil
}

// upstreamFailure turns a non-200 upstream answer into the client's error,
// passing the upstream's error through when it is in Anthropic's shape.
func upstreamFailure(status int, body []byte) *anthropic.Error {
	if d, ok := anthropic.ParseErrorBody(body); ok {
		return anthropic.Errorf(status, d.Type, "%s", d.Message)
	}
	if status < 500 {
		status = http.StatusBadGateway
	}
	return anthropic.Errorf(status, anthropic.TypeForStatus(status), "upstream returned status %d", status)
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
	out := body
	if guard == nil && !cl.keepContent() {
		// Nothing reads the text: decode only the usage.
		u, err := anthropic.DecodeUsage(body)
		if err != nil {
			return anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream returned a malformed response")
		}
		cl.usage = cl.usage.Add(u)
		cl.settle()
	} else {
		msg, err := anthropic.DecodeResponse(body)
		if err != nil {
			return anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream returned a malformed response")
		}
		cl.usage = cl.usage.Add(msg.Usage)
		cl.settle()
		if err := msg.EachText(func(text string) (string, error) {
			out, err := guard.whole(cl, text)
			cl.keepOutput(out)
			return out, err
		}); err != nil {
			return err
		}
		if out, err = msg.Encode(); err != nil {
			return err
		}
	}
	return cl.respond(out)
}

// serveCountTokens serves POST /v1/messages/count_tokens: authenticated
// and relayed; the input chain does not run (nothing reaches the model).
func (cl *call) serveCountTokens() error {
	if err := cl.identify(); err != nil {
		return err
	}
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	req, err := anthropic.DecodeRequest(body, anthropic.Options{CountTokens: true})
	if err != nil {
		return err
	}
	cl.model = req.Model
	if err := cl.checkModel(req.Model); err != nil {
		return err
	}
	if err := cl.admit(); err != nil {
		return err
	}
	resp, err := cl.callUpstream("/v1/messages/count_tokens", body)
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
	return cl.respond(b)
}

// serveModels serves GET /v1/models and /v1/models/{id}, filtered to the
// client's allowed models.
func (cl *call) serveModels() error {
	if err := cl.identify(); err != nil {
		return err
	}
	path := cl.c.Request.URL.Path
	if id := cl.c.Param("id"); id != "" && !cl.who.Client.AllowsModel(id) {
		return anthropic.Errorf(http.StatusNotFound, anthropic.TypeNotFound, "model: %s", id)
	}
	ctx, cancel := context.WithTimeout(cl.c.Request.Context(), cl.st.Config.Upstream.Timeout.Duration)
	defer cancel()
	q := ""
	if cl.c.Request.URL.RawQuery != "" {
		q = "?" + cl.c.Request.URL.RawQuery
	}
	t0 := time.Now()
	resp, _, err := cl.g.deps.Upstream.Do(ctx, http.MethodGet, path+q, nil, cl.forwardHeaders())
	cl.upstreamTime += time.Since(t0)
	if err != nil {
		return err
	}
	cl.upstreamID = firstValue(resp.Header, "Request-Id")
	copyResponseHeaders(cl.c.Writer.Header(), resp.Header)
	b, err := cl.readUpstream(&upstreamResponse{Response: resp, cancel: cancel})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return upstreamFailure(resp.StatusCode, b)
	}
	if cl.c.Param("id") == "" && len(cl.who.Client.Models) > 0 {
		b = filterModels(b, cl.who.Client.AllowsModel)
	}
	return cl.respond(b)
}

var _ = audit.DecisionAllow
