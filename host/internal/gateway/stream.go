package gateway

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// streamSink receives the validated stream; sseSink, which re-emits
// Anthropic's events, serves /v1/messages and routes.
type streamSink interface {
	// event forwards an event the output model judged.
	event(ev anthropic.Event) error
	// fail ends the stream with an error event.
	fail(e *apiError)
	// flush sends what was written.
	flush() error
}

// sseSink re-emits Anthropic's events as they are.
type sseSink struct{ w *anthropic.EventWriter }

func (s *sseSink) event(ev anthropic.Event) error { return s.w.Write(ev) }
func (s *sseSink) fail(e *apiError)               { _ = s.w.Write(e.event()); _ = s.w.Flush() }
func (s *sseSink) flush() error                   { return s.w.Flush() }

// relayStream serves a streaming /v1/messages call.
func (cl *call) relayStream(body []byte, guard *outputGuard) error {
	if err := cl.g.deps.Audit.Healthy(); err != nil && !cl.st.Config.Audit.FailOpen {
		return auditFailure(err)
	}
	resp, err := cl.openStream("/v1/messages", body)
	if err != nil {
		return err
	}
	h := cl.c.Writer.Header()
	h.Set("content-type", "text/event-stream; charset=utf-8")
	h.Set("cache-control", "no-cache")
	h.Set("x-accel-buffering", "no")
	cl.c.Writer.WriteHeader(http.StatusOK)
	sink := &sseSink{w: anthropic.NewEventWriter(cl.c.Writer)}
	cl.pump(resp, guard, sink)
	return nil
}

// openStream calls the upstream and checks that a stream came back.
func (cl *call) openStream(path string, body []byte) (*upstreamResponse, error) {
	resp, err := cl.callUpstream(path, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, rerr := cl.readUpstream(resp)
		if rerr != nil {
			return nil, rerr
		}
		return nil, upstreamFailure(resp.StatusCode, b)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("content-type")); mt != "text/event-stream" {
		resp.cancel()
		resp.Body.Close()
		return nil, fault.New(fault.UpstreamFailed, "upstream did not return an event stream")
	}
	return resp, nil
}

// pump reads upstream events, validates text through the guard, and writes
// to the sink. It settles usage and writes the audit record before the
// final message_stop reaches the client; it always ends with either
// message_stop or an error event, unless the client went away.
func (cl *call) pump(resp *upstreamResponse, guard *outputGuard, sink streamSink) {
	defer resp.cancel()
	defer resp.Body.Close()
	up := cl.st.Config.Upstream
	lim := startStreamLimits(up.StreamIdleTimeout.Duration, up.MaxStreamDuration.Duration, resp.cancel)
	defer lim.stop()
	// Every event goes through the output model (anthropic/outstream.go):
	// the output chain and the canary when the client has them, the key
	// scrubber always, and unknown types refused.
	oj := cl.outputJudge(guard)
	p := &pumpState{cl: cl, sink: sink, lim: lim, er: anthropic.NewEventReader(resp.Body), oj: oj,
		judge: anthropic.NewOutputStream(oj, cl.relay()), status: http.StatusOK}
	p.judge.MaxBuffered = int(min(up.MaxResponseBytes, 1<<30))
	t0 := time.Now()
	for p.step() {
	}
	cl.upstreamTime += time.Since(t0)
	resp.cancel()
	cl.finishStream(p)
}

// pumpState is one stream on its way from the upstream to the sink.
type pumpState struct {
	cl    *call
	sink  streamSink
	lim   *streamLimits
	er    *anthropic.EventReader
	su    anthropic.StreamUsage
	oj    *outputJudge
	judge *anthropic.OutputStream
	// status and failure are the stream's outcome (failure nil: success);
	// clientGone is set when the client stopped reading.
	status     int
	failure    error
	clientGone bool
}

// endWith sets the stream's outcome: err and the status its kind maps to.
func (p *pumpState) endWith(err error) { p.failure, p.status = err, toAPI(err).Status }

// step relays one upstream event through the output model to the sink. It
// returns false when the stream ends: message_stop, an error event, a
// failure, or a client that went away.
func (p *pumpState) step() bool {
	if p.er.Buffered() == 0 {
		// The next read waits for the network: send what is written.
		if err := p.sink.flush(); err != nil {
			p.clientGone = true
			return false
		}
	}
	ev, err := p.er.Next()
	p.lim.touch()
	if err != nil {
		p.readFailed(err)
		return false
	}
	se, err := anthropic.ParseStreamEvent(ev.Data)
	if err != nil {
		p.endWith(fault.New(fault.UpstreamFailed, "upstream sent a malformed event"))
		return false
	}
	p.su.Observe(&se)
	if se.Type == anthropic.EventContentBlockDelta && se.Delta.Type == "text_delta" {
		p.cl.keepOutput(se.Delta.Text)
	}
	switch se.Type {
	case anthropic.EventError:
		p.upstreamErrorEvent(se.Error)
		return false
	case anthropic.EventMessageStop:
		return false
	}
	// With nothing more buffered the next read waits for the network: the
	// guard judges now, so paced text is released live.
	p.oj.now = p.er.Buffered() == 0
	out, err := p.judge.Event(ev, &se)
	if err != nil {
		err = outputFailure(err)
		p.endWith(err)
		return false
	}
	for _, o := range out {
		if err := p.sink.event(o); err != nil {
			p.clientGone = true
			return false
		}
	}
	return true
}

// readFailed sets the outcome of a stream whose read failed: the client
// left, a stream limit fired, or the upstream ended the stream (a success
// only when the stream had reported its stop).
func (p *pumpState) readFailed(err error) {
	timedOut, tooLong := p.lim.tripped()
	switch {
	case p.cl.c.Request.Context().Err() != nil:
		p.clientGone = true
		p.endWith(fault.New(fault.ClientGone, "client disconnected"))
	case tooLong:
		p.endWith(fault.New(fault.UpstreamTimeout, "upstream stream exceeded max_stream_duration (%s)", p.lim.maxDur))
	case timedOut:
		p.endWith(fault.New(fault.UpstreamTimeout, "upstream stream stalled"))
	case errors.Is(err, io.EOF) && p.su.Stopped:
	default:
		p.endWith(fault.New(fault.UpstreamFailed, "upstream stream ended unexpectedly"))
	}
}

// upstreamErrorEvent ends the stream with the upstream's error event; its
// message is judged and scrubbed before the client sees it.
func (p *pumpState) upstreamErrorEvent(d *anthropic.ErrorDetail) {
	if d == nil {
		d = &anthropic.ErrorDetail{Type: anthropic.TypeAPI, Message: "upstream error"}
	}
	// Judged and scrubbed before the client sees it.
	p.endWith(&fault.Error{Kind: fault.UpstreamError, Status: http.StatusBadGateway, Type: d.Type, Msg: d.Message, Quoted: true})
}

// finishStream charges and records the stream, then ends it for the
// client: message_stop, or an error event, or nothing when it left.
func (cl *call) finishStream(p *pumpState) {
	if p.clientGone && p.failure == nil {
		p.endWith(fault.New(fault.ClientGone, "client disconnected"))
	}
	// Usage: what the stream reported, and at least the content generated
	// (text, thinking, tool input, cited text), so an interrupted stream
	// is still charged for what was generated.
	cl.usage = cl.usage.Add(p.su.Usage)
	if est := p.judge.Generated / 4; cl.usage.OutputTokens < est {
		cl.usage.OutputTokens = est
	}
	cl.settle()
	if werr := cl.record(p.status, p.failure, ""); werr != nil {
		if !p.clientGone {
			p.sink.fail(toAPI(auditFailure(werr)))
		}
		return
	}
	if p.clientGone {
		return
	}
	if p.failure != nil {
		p.sink.fail(cl.cleanError(toAPI(p.failure)))
		return
	}
	_ = p.sink.event(anthropic.Event{Name: anthropic.EventMessageStop, Data: []byte(`{"type":"message_stop"}`)})
	_ = p.sink.flush()
}

// streamLimits are a stream's two timers: idle (reset by every read) and
// maxDur, the cap on the whole stream (0: none; an upstream that never
// stops sending never trips the idle timer). Either cancels the upstream
// call, which fails the pending read; tripped tells which fired.
type streamLimits struct {
	idle, maxDur time.Duration
	idleTimer    *time.Timer
	capTimer     *time.Timer

	mu                sync.Mutex
	timedOut, tooLong bool
}

// startStreamLimits starts the timers; cancel ends the upstream call.
func startStreamLimits(idle, maxDur time.Duration, cancel func()) *streamLimits {
	l := &streamLimits{idle: idle, maxDur: maxDur}
	l.idleTimer = time.AfterFunc(idle, func() { l.mu.Lock(); l.timedOut = true; l.mu.Unlock(); cancel() })
	if maxDur > 0 {
		l.capTimer = time.AfterFunc(maxDur, func() { l.mu.Lock(); l.tooLong = true; l.mu.Unlock(); cancel() })
	}
	return l
}

// touch restarts the idle timer after a read.
func (l *streamLimits) touch() { l.idleTimer.Reset(l.idle) }

// tripped reports which limit fired.
func (l *streamLimits) tripped() (timedOut, tooLong bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timedOut, l.tooLong
}

// stop stops both timers.
func (l *streamLimits) stop() {
	l.idleTimer.Stop()
	if l.capTimer != nil {
		l.capTimer.Stop()
	}
}
