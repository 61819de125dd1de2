package standin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Stop reasons the stand-in sends.
const (
	stopEndTurn   = "end_turn"
	stopMaxTokens = "max_tokens"
)

type wireCacheCreation struct {
	Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
}

type wireUsage struct {
	InputTokens              int               `json:"input_tokens"`
	CacheCreationInputTokens int               `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int               `json:"cache_read_input_tokens"`
	CacheCreation            wireCacheCreation `json:"cache_creation"`
	OutputTokens             int               `json:"output_tokens"`
	ServiceTier              string            `json:"service_tier"`
}

type wireText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type wireMessageResp struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      any       `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	StopDetails  *struct{} `json:"stop_details"`
	Usage        wireUsage `json:"usage"`
}

type wireMessageStart struct {
	Type    string          `json:"type"`
	Message wireMessageResp `json:"message"`
}

type wireDeltaBody struct {
	StopReason   string    `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	StopDetails  *struct{} `json:"stop_details"`
}

type wireDeltaUsage struct {
	OutputTokens int `json:"output_tokens"`
}

type wireMessageDelta struct {
	Type  string         `json:"type"`
	Delta wireDeltaBody  `json:"delta"`
	Usage wireDeltaUsage `json:"usage"`
}

type wireTextDelta struct {
	Type  string   `json:"type"`
	Index int      `json:"index"`
	Delta wireText `json:"delta"`
}

// Frames that never change.
var (
	frameBlockStart   = sseFrame("content_block_start", []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`))
	framePing         = sseFrame("ping", []byte(`{"type":"ping"}`))
	frameBlockStop    = sseFrame("content_block_stop", []byte(`{"type":"content_block_stop","index":0}`))
	frameMessageStop  = sseFrame("message_stop", []byte(`{"type":"message_stop"}`))
	frameStreamError  = sseFrame("error", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	frameBrokenJSON   = sseFrame("content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"cut of`))
	frameGarbageLines = []byte("this line is not server-sent events\n\x00\x01garbage\nevent: content_block_delta\ndata: <<not json>>\n\n")
)

// sseFrame encodes one event: "event: NAME\ndata: JSON\n\n".
func sseFrame(name string, data []byte) []byte {
	b := make([]byte, 0, len("event: \ndata: \n\n")+len(name)+len(data))
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func deltaFrame(text string) []byte {
	return sseFrame("content_block_delta", marshal(wireTextDelta{
		Type: "content_block_delta", Delta: wireText{Type: "text_delta", Text: text},
	}))
}

// plan is one response about to be written.
type plan struct {
	reqID, msgID, model string
	reply               *preparedReply
	stopReason          string
	usage               Usage
}

func (s *Server) handleCountTokens(w http.ResponseWriter, body []byte, reqID string) {
	req, err := parseRequest(body, false)
	if err != nil {
		writeRequestError(w, reqID, err)
		return
	}
	if !s.modelAllowed(w, reqID, req.Model) {
		return
	}
	n := EstimateTokens(req.TextBytes)
	s.replyMu.Lock()
	if s.usage != nil {
		n = s.usage.InputTokens
	}
	s.replyMu.Unlock()
	out := []byte(`{"input_tokens":` + strconv.Itoa(n) + `}`)
	h := w.Header()
	s.setSuccessHeaders(h, reqID, 0, 0)
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	_, _ = w.Write(out)
}

func writeRequestError(w http.ResponseWriter, reqID string, err error) {
	var re *requestError
	if errors.As(err, &re) {
		writeError(w, reqID, re.status, ErrorTypeForStatus(re.status), re.msg)
		return
	}
	writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, err.Error())
}

func (s *Server) modelAllowed(w http.ResponseWriter, reqID, model string) bool {
	if !s.opts.RejectUnknownModels {
		return true
	}
	if _, ok := s.modelIndex[model]; ok {
		return true
	}
	writeError(w, reqID, http.StatusNotFound, errNotFound, "model: "+model)
	return false
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, body []byte, reqID string) {
	req, err := parseRequest(body, true)
	if err != nil {
		writeRequestError(w, reqID, err)
		return
	}
	if !s.modelAllowed(w, reqID, req.Model) {
		return
	}
	f, err := s.takeFault(req.LastUser)
	if err != nil {
		writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	// Only a fault that ends in a complete reply uses up a queued reply, so
	// that a retry after a fault gets the reply the test meant for it.
	consume := f.Kind == FaultNone || f.Kind == FaultSlowFirstByte
	p := s.plan(&req, reqID, consume)
	if f.Kind != FaultNone {
		s.serveFault(w, r, &req, p, f)
		return
	}
	if req.Stream {
		s.writeStream(w, r.Context(), p, 0, nil)
		return
	}
	s.writeMessage(w, p)
}

// plan picks the reply and usage for req, cutting the reply at max_tokens.
func (s *Server) plan(req *request, reqID string, consume bool) *plan {
	rep, override := s.nextReply(req, consume)
	p := &plan{reqID: reqID, msgID: newID("msg_01", 22), model: req.Model, reply: rep, stopReason: stopEndTurn}
	if limit := req.MaxTokens; limit > 0 && rep.content == nil && int64(EstimateTokens(len(rep.text))) > limit {
		p.reply = s.prepare(prefixUTF8(rep.text, int(min(limit*4, int64(len(rep.text))))))
		p.stopReason = stopMaxTokens
	}
	if override != nil {
		p.usage = *override
	} else {
		p.usage = Usage{InputTokens: EstimateTokens(req.TextBytes), OutputTokens: EstimateTokens(len(p.reply.text))}
	}
	return p
}

func (p *plan) wireUsage(output int) wireUsage {
	return wireUsage{
		InputTokens:              p.usage.InputTokens,
		CacheCreationInputTokens: p.usage.CacheCreationInputTokens,
		CacheReadInputTokens:     p.usage.CacheReadInputTokens,
		CacheCreation:            wireCacheCreation{Ephemeral5m: p.usage.CacheCreationInputTokens},
		OutputTokens:             output,
		ServiceTier:              "standard",
	}
}

func (p *plan) messageJSON() []byte {
	stop := p.stopReason
	return marshal(wireMessageResp{
		ID: p.msgID, Type: "message", Role: "assistant", Model: p.model,
		Content:    p.content(),
		StopReason: &stop,
		Usage:      p.wireUsage(p.usage.OutputTokens),
	})
}

func (s *Server) writeMessage(w http.ResponseWriter, p *plan) {
	body := p.messageJSON()
	h := w.Header()
	s.setSuccessHeaders(h, p.reqID, p.usage.InputTokens, p.usage.OutputTokens)
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// streamFrames is the full event sequence for p.
func (p *plan) streamFrames() [][]byte {
	start := marshal(wireMessageStart{Type: "message_start", Message: wireMessageResp{
		ID: p.msgID, Type: "message", Role: "assistant", Model: p.model,
		Content: []wireText{},
		Usage:   p.wireUsage(1),
	}})
	delta := marshal(wireMessageDelta{
		Type:  "message_delta",
		Delta: wireDeltaBody{StopReason: p.stopReason},
		Usage: wireDeltaUsage{OutputTokens: p.usage.OutputTokens},
	})
	if p.reply.blockFrames != nil {
		frames := make([][]byte, 0, 4+len(p.reply.blockFrames))
		frames = append(frames, sseFrame("message_start", start), framePing)
		frames = append(frames, p.reply.blockFrames...)
		return append(frames, sseFrame("message_delta", delta), frameMessageStop)
	}
	frames := make([][]byte, 0, 6+len(p.reply.frames))
	frames = append(frames, sseFrame("message_start", start), frameBlockStart, framePing)
	frames = append(frames, p.reply.frames...)
	return append(frames, frameBlockStop, sseFrame("message_delta", delta), frameMessageStop)
}

// content is the "content" of a non-streaming reply.
func (p *plan) content() any {
	if p.reply.content != nil {
		return p.reply.content
	}
	return []wireText{{Type: "text", Text: p.reply.text}}
}

// deltaRange is where the text deltas sit in streamFrames.
const firstDeltaFrame = 3

// sse writes and flushes SSE frames, counting the stream as open.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (s *Server) beginSSE(w http.ResponseWriter, p *plan) *sse {
	h := w.Header()
	s.setSuccessHeaders(h, p.reqID, p.usage.InputTokens, p.usage.OutputTokens)
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = noCache
	w.WriteHeader(http.StatusOK)
	s.openStreams.Add(1)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

func (s *Server) endSSE() {
	s.openStreams.Add(-1)
	s.notifyWaiters()
}

func (e *sse) write(frame []byte) bool {
	if e.err != nil {
		return false
	}
	if _, e.err = e.w.Write(frame); e.err != nil {
		return false
	}
	e.err = e.rc.Flush()
	return e.err == nil
}

// writeStream sends p's events. With stopAfter > 0 it sends only that many
// and then calls after (nil ends the response there).
func (s *Server) writeStream(w http.ResponseWriter, ctx context.Context, p *plan, stopAfter int, after func(*sse)) {
	frames := p.streamFrames()
	out := s.beginSSE(w, p)
	defer s.endSSE()
	lastDelta := firstDeltaFrame + len(p.reply.frames) - 1
	for i, fr := range frames {
		if stopAfter > 0 && i == stopAfter {
			break
		}
		if i > firstDeltaFrame && i <= lastDelta && s.opts.DeltaDelay > 0 {
			if !s.sleep(ctx, s.opts.DeltaDelay) {
				return
			}
		}
		if !out.write(fr) {
			return
		}
	}
	if after != nil {
		after(out)
	}
}

// resetConn drops the client's connection with a TCP RST. When the
// connection cannot be hijacked (HTTP/2), the handler is aborted instead.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, req *request, p *plan, f Fault) {
	ctx := r.Context()
	switch f.Kind {
	case FaultSlowFirstByte:
		if !s.sleep(ctx, f.Delay) {
			return
		}
		if req.Stream {
			s.writeStream(w, ctx, p, 0, nil)
		} else {
			s.writeMessage(w, p)
		}
	case FaultReset:
		if !req.Stream {
			resetConn(w)
			return
		}
		s.writeStream(w, ctx, p, f.AfterEvents, func(*sse) { resetConn(w) })
	case FaultError, FaultServerError, FaultOverloaded, FaultRateLimit:
		s.writeFaultError(w, p.reqID, f)
	case FaultStreamError:
		if !req.Stream {
			s.writeFaultError(w, p.reqID, Fault{Kind: FaultOverloaded, Message: f.Message, RetryAfter: f.RetryAfter})
			return
		}
		frame := frameStreamError
		if f.Message != "" {
			frame = sseFrame("error", marshal(map[string]any{"type": "error", "error": map[string]any{"type": errOverloaded, "message": f.Message}}))
		}
		s.writeStream(w, ctx, p, f.AfterEvents, func(o *sse) { o.write(frame) })
	case FaultMalformedJSON, FaultMalformedSSE:
		if !req.Stream {
			body := p.messageJSON()
			body = body[:len(body)/2]
			h := w.Header()
			s.setSuccessHeaders(h, p.reqID, p.usage.InputTokens, p.usage.OutputTokens)
			h["Content-Type"] = jsonContentType
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			_, _ = w.Write(body)
			return
		}
		bad := frameBrokenJSON
		if f.Kind == FaultMalformedSSE {
			bad = frameGarbageLines
		}
		s.writeStream(w, ctx, p, f.AfterEvents, func(o *sse) { o.write(bad) })
	case FaultTruncatedSSE:
		if !req.Stream {
			body := p.messageJSON()
			h := w.Header()
			s.setSuccessHeaders(h, p.reqID, p.usage.InputTokens, p.usage.OutputTokens)
			h["Content-Type"] = jsonContentType
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			_, _ = w.Write(body[:len(body)/2])
			return
		}
		s.writeStream(w, ctx, p, f.AfterEvents, nil)
	case FaultEndless:
		s.writeEndless(w, ctx, req, p, f.Delay)
	case FaultHuge:
		text := hugeText(f.Size)
		hp := *p
		hp.reply = &preparedReply{text: text, frames: hugeFrames(text)}
		hp.stopReason = stopEndTurn
		hp.usage.OutputTokens = EstimateTokens(len(text))
		if req.Stream {
			s.writeStream(w, ctx, &hp, 0, nil)
		} else {
			s.writeMessage(w, &hp)
		}
	}
}

func (s *Server) writeFaultError(w http.ResponseWriter, reqID string, f Fault) {
	status := http.StatusInternalServerError
	msg := "Internal server error"
	switch f.Kind {
	case FaultOverloaded:
		status, msg = StatusOverloaded, "Overloaded"
	case FaultRateLimit:
		status, msg = http.StatusTooManyRequests, "Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
	case FaultError:
		status, msg = f.Status, http.StatusText(f.Status)
		if msg == "" {
			msg = "Error"
		}
	}
	if f.Message != "" {
		msg = f.Message
	}
	writeErrorRetry(w, reqID, status, ErrorTypeForStatus(status), msg, f.RetryAfter)
}

// writeEndless streams the reply's deltas over and over, every interval,
// until the client goes away or the server closes.
func (s *Server) writeEndless(w http.ResponseWriter, ctx context.Context, req *request, p *plan, interval time.Duration) {
	frames := p.reply.frames
	if len(frames) == 0 {
		frames = [][]byte{deltaFrame("and on ")}
	}
	if !req.Stream {
		h := w.Header()
		s.setSuccessHeaders(h, p.reqID, p.usage.InputTokens, 0)
		h["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		head := `{"id":"` + p.msgID + `","type":"message","role":"assistant","model":` + string(marshal(p.model)) + `,"content":[{"type":"text","text":"`
		rc := http.NewResponseController(w)
		if _, err := w.Write([]byte(head)); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("and on ", 64))
		for s.sleep(ctx, interval) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		return
	}
	all := p.streamFrames()
	out := s.beginSSE(w, p)
	defer s.endSSE()
	for _, fr := range all[:firstDeltaFrame] {
		if !out.write(fr) {
			return
		}
	}
	for i := 0; s.sleep(ctx, interval); i++ {
		if !out.write(frames[i%len(frames)]) {
			return
		}
	}
}

// hugeText is n bytes of deterministic ASCII prose.
func hugeText(n int) string {
	const unit = "The stand-in is sending a huge reply on purpose. "
	var b strings.Builder
	b.Grow(n + len(unit))
	for b.Len() < n {
		b.WriteString(unit)
	}
	return b.String()[:n]
}

// hugeDeltaBytes is the delta size for huge replies.
const hugeDeltaBytes = 16 << 10

func hugeFrames(text string) [][]byte {
	chunks := splitDeltas(text, hugeDeltaBytes)
	frames := make([][]byte, len(chunks))
	for i, c := range chunks {
		frames[i] = deltaFrame(c)
	}
	return frames
}
