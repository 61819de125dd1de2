package streamguard

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// Sink receives the judged stream: the HTTP edge writes it as SSE.
type Sink interface {
	// Event forwards an event the output model judged.
	Event(ev anthropic.Event) error
	// Fail ends the stream with an error event.
	Fail(ev anthropic.Event)
	// Flush sends what was written.
	Flush() error
}

// Options are a relayed stream's bounds.
type Options struct {
	// Relay names the unknown types relayed unjudged
	// (upstream.relay_unknown_types).
	Relay anthropic.Relay
	// MaxBuffered bounds the tool input held for one block (0: 64 MiB).
	MaxBuffered int
	// Idle fails a stream whose upstream sends nothing for that long, and
	// MaxDuration one that lasts longer (0: no cap). Either calls Cancel,
	// which must end the pending read of the upstream body.
	Idle, MaxDuration time.Duration
	Cancel            func()
	// Keep, when set, receives each text delta as the upstream sent it
	// (for the audit trail).
	Keep Keeper
}

// Outcome is how a relayed stream ended.
type Outcome struct {
	// Err is the stream's failure (nil: it reached message_stop); a
	// *fault.Error, or a refusal of the output model or the guard.
	Err error
	// ClientGone is set when the client stopped reading.
	ClientGone bool
	// Usage is what the stream reported; Generated the bytes of generated
	// content it carried (text, thinking, tool input, cited text).
	Usage     anthropic.Usage
	Generated int64
}

// relay is one stream on its way from the upstream to the sink.
type relay struct {
	ctx   context.Context
	sink  Sink
	lim   *limits
	er    *anthropic.EventReader
	su    anthropic.StreamUsage
	j     *Judge
	model *anthropic.OutputStream
	keep  Keeper
	out   Outcome
}

// Relay reads upstream events from body, judges each through the output
// model with j, and writes what the client may receive to sink, flushing
// whenever the upstream has nothing more buffered. ctx is the client's:
// when it ends, the client is gone. Relay writes neither the final
// message_stop nor an error event: the caller settles and records the
// call first, then ends the stream with Finish.
func Relay(ctx context.Context, body io.Reader, sink Sink, j *Judge, o Options) Outcome {
	cancel := o.Cancel
	if cancel == nil {
		cancel = func() {}
	}
	lim := startLimits(o.Idle, o.MaxDuration, cancel)
	defer lim.stop()
	r := &relay{ctx: ctx, sink: sink, lim: lim, er: anthropic.NewEventReader(body), j: j,
		model: anthropic.NewOutputStream(j, o.Relay), keep: o.Keep}
	r.model.MaxBuffered = o.MaxBuffered
	for r.step() {
	}
	r.out.Usage, r.out.Generated = r.su.Usage, r.model.Generated
	if r.out.ClientGone && r.out.Err == nil {
		r.out.Err = fault.New(fault.ClientGone, "client disconnected")
	}
	return r.out
}

// Finish ends the stream for the client: message_stop when failure is
// nil, else failure (an error event, see anthropic.ErrorEvent).
func Finish(sink Sink, failure *anthropic.Event) {
	if failure != nil {
		sink.Fail(*failure)
		return
	}
	_ = sink.Event(anthropic.Event{Name: anthropic.EventMessageStop, Data: []byte(`{"type":"message_stop"}`)})
	_ = sink.Flush()
}

// fail sets the stream's failure.
func (r *relay) fail(err error) { r.out.Err = err }

// step relays one upstream event through the output model to the sink. It
// returns false when the stream ends: message_stop, an error event, a
// failure, or a client that went away.
func (r *relay) step() bool {
	if r.er.Buffered() == 0 {
		// The next read waits for the network: send what is written.
		if err := r.sink.Flush(); err != nil {
			r.out.ClientGone = true
			return false
		}
	}
	ev, err := r.er.Next()
	r.lim.touch()
	if err != nil {
		r.readFailed(err)
		return false
	}
	se, err := anthropic.ParseStreamEvent(ev.Data)
	if err != nil {
		r.fail(fault.New(fault.UpstreamFailed, "upstream sent a malformed event"))
		return false
	}
	r.su.Observe(&se)
	if se.Type == anthropic.EventContentBlockDelta && se.Delta.Type == "text_delta" && r.keep != nil {
		r.keep.KeepOutput(se.Delta.Text)
	}
	switch se.Type {
	case anthropic.EventError:
		r.upstreamErrorEvent(se.Error)
		return false
	case anthropic.EventMessageStop:
		return false
	}
	return r.judge(ev, &se)
}

// judge passes one event through the output model and writes what it
// releases.
func (r *relay) judge(ev anthropic.Event, se *anthropic.StreamEvent) bool {
	// With nothing more buffered the next read waits for the network: the
	// guard judges now, so paced text is released live.
	r.j.Now = r.er.Buffered() == 0
	out, err := r.model.Event(ev, se)
	if err != nil {
		r.fail(OutputFailure(err))
		return false
	}
	for _, o := range out {
		if err := r.sink.Event(o); err != nil {
			r.out.ClientGone = true
			return false
		}
	}
	return true
}

// readFailed sets the outcome of a stream whose read failed: the client
// left, a stream limit fired, or the upstream ended the stream (a success
// only when the stream had reported its stop).
func (r *relay) readFailed(err error) {
	timedOut, tooLong := r.lim.tripped()
	switch {
	case r.ctx.Err() != nil:
		r.out.ClientGone = true
		r.fail(fault.New(fault.ClientGone, "client disconnected"))
	case tooLong:
		r.fail(fault.New(fault.UpstreamTimeout, "upstream stream exceeded max_stream_duration (%s)", r.lim.maxDur))
	case timedOut:
		r.fail(fault.New(fault.UpstreamTimeout, "upstream stream stalled"))
	case errors.Is(err, io.EOF) && r.su.Stopped:
	case errors.Is(err, anthropic.ErrBareCR):
		r.fail(fault.New(fault.UpstreamFailed, "upstream sent a malformed event: a line holds a bare carriage return"))
	case errors.Is(err, anthropic.ErrEventTooLarge):
		r.fail(fault.New(fault.UpstreamFailed, "upstream sent an event over %d MiB", anthropic.MaxEventBytes>>20))
	default:
		r.fail(fault.New(fault.UpstreamFailed, "upstream stream ended unexpectedly"))
	}
}

// upstreamErrorEvent ends the stream with the upstream's error event; its
// message is judged and scrubbed (CleanMessage) before the client sees
// it.
func (r *relay) upstreamErrorEvent(d *anthropic.ErrorDetail) {
	if d == nil {
		d = &anthropic.ErrorDetail{Type: anthropic.TypeAPI, Message: "upstream error"}
	}
	r.fail(&fault.Error{Kind: fault.UpstreamError, Status: http.StatusBadGateway, Type: d.Type, Msg: d.Message, Quoted: true})
}

// OutputFailure classifies a refusal of the output model: an unknown or
// malformed shape is an upstream failure naming it; a stage's verdict
// keeps its own kind.
func OutputFailure(err error) error {
	var ut *anthropic.UnknownTypeError
	var mo *anthropic.MalformedOutputError
	if errors.As(err, &ut) || errors.As(err, &mo) {
		return fault.New(fault.UpstreamFailed, "%s", err.Error())
	}
	return err
}

// limits are a stream's two timers: idle (reset by every read) and
// maxDur, the cap on the whole stream (0: none; an upstream that never
// stops sending never trips the idle timer). Either cancels the upstream
// call, which fails the pending read; tripped tells which fired.
type limits struct {
	idle, maxDur time.Duration
	idleTimer    *time.Timer
	capTimer     *time.Timer

	mu                sync.Mutex
	timedOut, tooLong bool
}

// startLimits starts the timers (an idle of 0: none); cancel ends the
// upstream call.
func startLimits(idle, maxDur time.Duration, cancel func()) *limits {
	l := &limits{idle: idle, maxDur: maxDur}
	if idle > 0 {
		l.idleTimer = time.AfterFunc(idle, func() { l.mu.Lock(); l.timedOut = true; l.mu.Unlock(); cancel() })
	}
	if maxDur > 0 {
		l.capTimer = time.AfterFunc(maxDur, func() { l.mu.Lock(); l.tooLong = true; l.mu.Unlock(); cancel() })
	}
	return l
}

// touch restarts the idle timer after a read.
func (l *limits) touch() {
	if l.idleTimer != nil {
		l.idleTimer.Reset(l.idle)
	}
}

// tripped reports which limit fired.
func (l *limits) tripped() (timedOut, tooLong bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timedOut, l.tooLong
}

// stop stops both timers.
func (l *limits) stop() {
	if l.idleTimer != nil {
		l.idleTimer.Stop()
	}
	if l.capTimer != nil {
		l.capTimer.Stop()
	}
}
