package gateway

import (
	"mime"
	"net/http"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/streamguard"
)

// sseSink is the streamguard.Sink that re-emits Anthropic's events to the
// client; it serves /v1/messages and routes.
type sseSink struct{ w *anthropic.EventWriter }

func (s *sseSink) Event(ev anthropic.Event) error { return s.w.Write(ev) }
func (s *sseSink) Fail(e *anthropic.Error)        { _ = s.w.Write(anthropic.ErrorEvent(e)); _ = s.w.Flush() }
func (s *sseSink) Flush() error                   { return s.w.Flush() }

// relayStream serves a streaming /v1/messages call.
func (cl *call) relayStream(body []byte, guard *streamguard.Guard) error {
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

// pump relays the upstream stream through the stream guard to the sink
// (streamguard.Relay), then settles usage and writes the audit record
// before the final message_stop reaches the client; the stream always
// ends with either message_stop or an error event, unless the client
// went away.
func (cl *call) pump(resp *upstreamResponse, guard *streamguard.Guard, sink streamguard.Sink) {
	defer resp.cancel()
	defer resp.Body.Close()
	up := cl.st.Config.Upstream
	t0 := time.Now()
	out := streamguard.Relay(cl.c.Request.Context(), resp.Body, sink, cl.outputJudge(guard), streamguard.Options{
		Relay:       cl.relay(),
		MaxBuffered: int(min(up.MaxResponseBytes, 1<<30)),
		Idle:        up.StreamIdleTimeout.Duration,
		MaxDuration: up.MaxStreamDuration.Duration,
		Cancel:      resp.cancel,
		Keep:        cl.keepOutput,
	})
	cl.upstreamTime += time.Since(t0)
	resp.cancel()
	cl.finishStream(out, sink)
}

// finishStream charges and records the stream, then ends it for the
// client: message_stop, or an error event, or nothing when it left.
func (cl *call) finishStream(out streamguard.Outcome, sink streamguard.Sink) {
	// Usage: what the stream reported, and at least the content generated
	// (text, thinking, tool input, cited text), so an interrupted stream
	// is still charged for what was generated.
	cl.usage = cl.usage.Add(out.Usage)
	if est := out.Generated / 4; cl.usage.OutputTokens < est {
		cl.usage.OutputTokens = est
	}
	cl.settle()
	status := http.StatusOK
	if out.Err != nil {
		status = asAPIError(out.Err).Status
	}
	if werr := cl.record(status, out.Err, ""); werr != nil {
		if !out.ClientGone {
			sink.Fail(auditUnavailable())
		}
		return
	}
	if out.ClientGone {
		return
	}
	var told *anthropic.Error
	if out.Err != nil {
		told = cl.cleanError(asAPIError(out.Err))
	}
	streamguard.Finish(sink, told)
}
