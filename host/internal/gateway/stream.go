package gateway

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
)

// streamSink receives the validated stream; sseSink, which re-emits
// Anthropic's events, serves /v1/messages and routes.
type streamSink interface {
	// event forwards an event the output model judged.
	event(ev anthropic.Event) error
	// fail ends the stream with an error event.
	fail(e *anthropic.Error)
	// flush sends what was written.
	flush() error
}

// sseSink re-emits Anthropic's events as they are.
type sseSink struct{ w *anthropic.EventWriter }

func (s *sseSink) event(ev anthropic.Event) error { return s.w.Write(ev) }
func (s *sseSink) fail(e *anthropic.Error)        { _ = s.w.Write(anthropic.ErrorEvent(e)); _ = s.w.Flush() }
func (s *sseSink) flush() error                   { return s.w.Flush() }

// relayStream serves a streaming /v1/messages call.
func (cl *call) relayStream(body []byte, guard *outputGuard) error {
	if err := cl.g.deps.Audit.Healthy(); err != nil && !cl.st.Config.Audit.FailOpen {
		return auditUnavailable()
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
		return nil, anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream did not return an event stream")
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
	idle := cl.st.Config.Upstream.StreamIdleTimeout.Duration
	var timedOut bool
	var mu sync.Mutex
	timer := time.AfterFunc(idle, func() { mu.Lock(); timedOut = true; mu.Unlock(); resp.cancel() })
	defer timer.Stop()
	// maxDur caps the whole stream: an upstream that never stops sending
	// never trips the idle timer.
	var tooLong bool
	maxDur := cl.st.Config.Upstream.MaxStreamDuration.Duration
	if maxDur > 0 {
		capTimer := time.AfterFunc(maxDur, func() { mu.Lock(); tooLong = true; mu.Unlock(); resp.cancel() })
		defer capTimer.Stop()
	}

	er := anthropic.NewEventReader(resp.Body)
	var su anthropic.StreamUsage
	// Every event goes through the output model (anthropic/outstream.go):
	// the output chain and the canary when the client has them, the key
	// scrubber always, and unknown types refused.
	oj := cl.outputJudge(guard)
	judge := anthropic.NewOutputStream(oj, cl.relay())
	judge.MaxBuffered = int(min(cl.st.Config.Upstream.MaxResponseBytes, 1<<30))
	status := http.StatusOK
	var failure error
	clientGone := false
	t0 := time.Now()

	endWith := func(err error, st int) {
		failure, status = err, st
	}
loop:
	for {
		if er.Buffered() == 0 {
			// The next read waits for the network: send what is written.
			if err := sink.flush(); err != nil {
				clientGone = true
				break loop
			}
		}
		ev, err := er.Next()
		timer.Reset(idle)
		if err != nil {
			mu.Lock()
			to, long := timedOut, tooLong
			mu.Unlock()
			switch {
			case cl.c.Request.Context().Err() != nil:
				clientGone = true
				endWith(anthropic.Errorf(499, anthropic.TypeAPI, "client disconnected"), 499)
			case long:
				endWith(anthropic.Errorf(http.StatusGatewayTimeout, anthropic.TypeAPI, "upstream stream exceeded max_stream_duration (%s)", maxDur), http.StatusGatewayTimeout)
			case to:
				endWith(anthropic.Errorf(http.StatusGatewayTimeout, anthropic.TypeAPI, "upstream stream stalled"), http.StatusGatewayTimeout)
			case errors.Is(err, io.EOF) && su.Stopped:
			default:
				endWith(anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream stream ended unexpectedly"), http.StatusBadGateway)
			}
			break loop
		}
		se, err := anthropic.ParseStreamEvent(ev.Data)
		if err != nil {
			endWith(anthropic.Errorf(http.StatusBadGateway, anthropic.TypeAPI, "upstream sent a malformed event"), http.StatusBadGateway)
			break loop
		}
		su.Observe(&se)
		if se.Type == anthropic.EventContentBlockDelta && se.Delta.Type == "text_delta" {
			cl.keepOutput(se.Delta.Text)
		}
		if se.Type == anthropic.EventError {
			d := se.Error
			if d == nil {
				d = &anthropic.ErrorDetail{Type: anthropic.TypeAPI, Message: "upstream error"}
			}
			e := anthropic.Errorf(http.StatusBadGateway, d.Type, "%s", d.Message)
			e.Upstream = true // judged and scrubbed before the client sees it
			endWith(e, http.StatusBadGateway)
			break loop
		}
		if se.Type == anthropic.EventMessageStop {
			break loop
		}
		// With nothing more buffered the next read waits for the
		// network: the guard judges now, so paced text is released live.
		oj.now = er.Buffered() == 0
		out, err := judge.Event(ev, &se)
		if err != nil {
			err = outputFailure(err)
			endWith(err, asAPIError(err).Status)
			break loop
		}
		for _, o := range out {
			if err := sink.event(o); err != nil {
				clientGone = true
				break loop
			}
		}
	}
	cl.upstreamTime += time.Since(t0)
	resp.cancel()
	if clientGone && failure == nil {
		failure, status = anthropic.Errorf(499, anthropic.TypeAPI, "client disconnected"), 499
	}
	// Usage: what the stream reported, and at least the content generated
	// (text, thinking, tool input, cited text), so an interrupted stream
	// is still charged for what was generated.
	cl.usage = cl.usage.Add(su.Usage)
	if est := judge.Generated / 4; cl.usage.OutputTokens < est {
		cl.usage.OutputTokens = est
	}
	cl.settle()
	if werr := cl.record(status, failure, ""); werr != nil {
		if !clientGone {
			sink.fail(auditUnavailable())
		}
		return
	}
	if clientGone {
		return
	}
	if failure != nil {
		sink.fail(cl.cleanError(asAPIError(failure)))
		return
	}
	_ = sink.event(anthropic.Event{Name: anthropic.EventMessageStop, Data: []byte(`{"type":"message_stop"}`)})
	_ = sink.flush()
}
