package exchange

import (
	"mime"
	"net/http"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/streamguard"
)

// relayStream serves a streamed call: the upstream's events go through
// the stream guard to the Response's stream.
func (c *Call) relayStream(body []byte, guard *streamguard.Guard) error {
	if err := c.deps.Audit.Healthy(); err != nil && !c.pol.FailOpen {
		return AuditFailure(err)
	}
	resp, err := c.openStream("/v1/messages", body)
	if err != nil {
		return err
	}
	c.pump(resp, guard, c.resp.Stream())
	return nil
}

// openStream calls the upstream and checks that a stream came back.
func (c *Call) openStream(path string, body []byte) (*upstreamResponse, error) {
	resp, err := c.callUpstream(http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := c.answer(resp)
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("content-type")); mt != "text/event-stream" {
		resp.cancel()
		resp.Body.Close()
		return nil, fault.New(fault.UpstreamFailed, "upstream did not return an event stream")
	}
	return resp, nil
}

// pump relays the upstream stream through the stream guard to the sink
// (streamguard.Relay), then settles usage and writes the audit record
// before the final message_stop reaches the client; the stream always
// ends with either message_stop or an error event, unless the client
// went away.
func (c *Call) pump(resp *upstreamResponse, guard *streamguard.Guard, sink streamguard.Sink) {
	defer resp.cancel()
	defer resp.Body.Close()
	t0 := time.Now()
	out := streamguard.Relay(c.ctx, resp.Body, sink, c.outputJudge(guard), streamguard.Options{
		Relay:       c.pol.Relay,
		MaxBuffered: int(min(c.pol.MaxResponseBytes, 1<<30)), // 0: the guard's own 64 MiB
		Idle:        c.pol.StreamIdle,
		MaxDuration: c.pol.MaxStreamDuration,
		Cancel:      resp.cancel,
		Keep:        c,
	})
	c.upstreamTime += time.Since(t0)
	resp.cancel()
	c.finishStream(out, sink)
}

// finishStream charges and records the stream, then ends it for the
// client: message_stop, or an error event, or nothing when it left.
func (c *Call) finishStream(out streamguard.Outcome, sink streamguard.Sink) {
	// Usage: what the stream reported, and at least the content generated
	// (text, thinking, tool input, cited text), so an interrupted stream
	// is still charged for what was generated.
	c.usage = c.usage.Add(out.Usage)
	if est := out.Generated / 4; c.usage.OutputTokens < est {
		c.usage.OutputTokens = est
	}
	c.Settle()
	status := http.StatusOK
	if out.Err != nil {
		status = c.deps.Told(out.Err).Status
	}
	if werr := c.Record(status, out.Err); werr != nil {
		if !out.ClientGone {
			sink.Fail(c.deps.Told(AuditFailure(werr)).Event())
		}
		return
	}
	if out.ClientGone {
		return
	}
	var failure *anthropic.Event
	if out.Err != nil {
		ev := c.cleanError(c.deps.Told(out.Err)).Event()
		failure = &ev
	}
	streamguard.Finish(sink, failure)
}
