// Package pipeline runs ordered chains of plugins (sanitizers on input,
// validators on output) over a text: a modify feeds the next plugin, the
// first reject stops the chain, and a plugin error rejects (fail closed)
// unless the plugin is configured with on_error = "skip".
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pluginerr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Stage judges text for one phase.
type Stage interface {
	// Name names the stage in records and errors.
	Name() string
	// Call judges req; an error is a plugin error (crash, timeout, bad verdict).
	Call(ctx context.Context, req *abi.Request) (abi.Verdict, error)
}

// NativeStage adapts sdk handlers (func(abi.Request) abi.Verdict) run
// in-process. A nil handler means the plugin lacks that phase. A panic in a
// handler becomes a plugin error.
type NativeStage struct {
	PluginName    string
	Input, Output func(abi.Request) abi.Verdict
}

// Name implements Stage.
func (s *NativeStage) Name() string { return s.PluginName }

// HasPhase reports whether a handler is set for the phase.
func (s *NativeStage) HasPhase(phase abi.Phase) bool { return s.handler(phase) != nil }

func (s *NativeStage) handler(phase abi.Phase) func(abi.Request) abi.Verdict {
	switch phase {
	case abi.PhaseInput:
		return s.Input
	case abi.PhaseOutput:
		return s.Output
	}
	return nil
}

// Call implements Stage. The verdict goes through the same checks as a
// sandboxed plugin's (abi.DecodeVerdict).
func (s *NativeStage) Call(ctx context.Context, req *abi.Request) (v abi.Verdict, err error) {
	h := s.handler(req.Phase)
	if h == nil {
		return abi.Verdict{}, fmt.Errorf("plugin %q has no %s handler", s.PluginName, req.Phase)
	}
	if err := ctx.Err(); err != nil {
		return abi.Verdict{}, pluginerr.Wrap(pluginerr.Canceled, err)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = abi.Verdict{}, pluginerr.New(pluginerr.TrapUnreachable, "plugin %q panicked: %v", s.PluginName, r)
		}
	}()
	v = h(*req)
	// The same rules as abi.DecodeVerdict, checked on the struct: a native
	// verdict has no JSON to get wrong, only an action.
	switch v.Action {
	case abi.Allow, abi.Reject, abi.Modify:
		return v, nil
	}
	return abi.Verdict{}, pluginerr.New(pluginerr.UnknownAction, "plugin %q: %w: %w %q", s.PluginName, abi.ErrBadVerdict, abi.ErrUnknownAction, string(v.Action))
}

// Plugin is one configured stage in a chain.
type Plugin struct {
	Stage Stage
	// Name is the configured plugin name.
	Name string
	// OnError is "reject" (the zero value behaves so) or "skip".
	OnError string
	// Config is the plugin's table, sent as the request's "config".
	Config json.RawMessage
	// Streaming is "buffer" or "incremental"; HoldBack the bytes kept back
	// when incremental. The chain runner itself judges whole texts.
	Streaming string
	HoldBack  int
}

// Chain is an ordered list of plugins for one phase.
type Chain []*Plugin

// Record outcomes besides the abi actions.
const (
	// ActionError marks a plugin error that rejected the text.
	ActionError abi.Action = "error"
	// ActionSkip marks a plugin error skipped under on_error = "skip".
	ActionSkip abi.Action = "skip"
)

// Record is what one plugin run did, for logs, metrics and the audit line.
type Record struct {
	Plugin   string
	Phase    abi.Phase
	Action   abi.Action // allow, modify, reject, error or skip
	Reason   string
	Duration time.Duration
	// Error is the failure's detail and Cause its kind, for operators
	// only (logs, audit, metrics, console); both are empty on success.
	Error    string
	Cause    pluginerr.Cause
	Findings int
	// Hold is the plugin's Verdict.Hold, or -1 when it gave none (or
	// failed).
	Hold int
}

// RejectError is a reject verdict. It is a fault.InputRejected or a
// fault.OutputRejected (by its phase) naming the plugin: errors.As(err,
// &*fault.Error) finds that fault through Unwrap.
type RejectError struct {
	Plugin, Reason string
	Phase          abi.Phase
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("%s rejected by plugin %q: %s", e.Phase, e.Plugin, e.Reason)
}

// Unwrap returns the verdict as a fault, whose message is Error's.
func (e *RejectError) Unwrap() error {
	k := fault.InputRejected
	if e.Phase == abi.PhaseOutput {
		k = fault.OutputRejected
	}
	return &fault.Error{Kind: k, Msg: e.Error(), Plugin: e.Plugin}
}

// PluginError is a plugin crash, timeout or bad verdict under on_error =
// "reject": a fault.PluginFailed naming the plugin, whose cause (Err, with
// its pluginerr.Cause) is for operators only.
type PluginError struct {
	Plugin string
	Phase  abi.Phase
	Err    error
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("plugin %q failed on %s: %v", e.Plugin, e.Phase, e.Err)
}

// Unwrap returns the failure as a fault and the underlying error.
func (e *PluginError) Unwrap() []error {
	f := &fault.Error{Kind: fault.PluginFailed, Plugin: e.Plugin, Err: e.Err,
		Msg: fmt.Sprintf("plugin %q failed; the request was refused (on_error = \"reject\")", e.Plugin)}
	return []error{f, e.Err}
}

// ErrCanceled is returned when the context ends between plugins.
var ErrCanceled = errors.New("chain canceled")

// canceled is the error of a chain whose context ended before plugin name:
// it wraps ErrCanceled and ctx's error, and is a fault.ClientGone when the
// caller went away (a deadline is left unclassified: moat's own).
func canceled(name string, ctxErr error) error {
	err := fmt.Errorf("%w before plugin %q: %w", ErrCanceled, name, ctxErr)
	if errors.Is(ctxErr, context.Canceled) {
		return fault.Wrap(fault.ClientGone, err, "client disconnected")
	}
	return err
}

// Run runs the chain in order: modify feeds the next plugin, the first
// reject stops. It returns the final text and one Record per plugin run;
// on a reject the error is a *RejectError, on a plugin error under
// on_error = "reject" a *PluginError.
func (c Chain) Run(ctx context.Context, phase abi.Phase, text string, meta abi.Context) (string, []Record, error) {
	records := make([]Record, 0, len(c))
	req := &abi.Request{Phase: phase, Context: meta}
	for _, p := range c {
		req.Text, req.Config = text, p.Config
		out, rec, err := p.Judge(ctx, req)
		if rec.Plugin != "" {
			records = append(records, rec)
		}
		if err != nil {
			return text, records, err
		}
		text = out
	}
	return text, records, nil
}

// Judge runs the plugin alone on req, as Run runs each plugin of a chain
// (req.Config is the caller's to set; a caller judging many texts reuses
// one req). It returns the text the verdict leaves (req.Text unless it
// modifies) and the run's record; the error is a *RejectError, a
// *PluginError, or, when ctx ended before the plugin ran, the chain's
// cancel error with a zero record (Plugin "").
func (p *Plugin) Judge(ctx context.Context, req *abi.Request) (string, Record, error) {
	if err := ctx.Err(); err != nil {
		return req.Text, Record{}, canceled(p.Name, err)
	}
	start := time.Now()
	v, err := p.Stage.Call(ctx, req)
	rec := Record{Plugin: p.Name, Phase: req.Phase, Duration: time.Since(start), Hold: -1}
	if err != nil {
		rec.Error = err.Error()
		if rec.Cause = pluginerr.CauseOf(err); rec.Cause == "" {
			rec.Cause = pluginerr.TrapOther
		}
		if p.OnError == "skip" {
			rec.Action = ActionSkip
			return req.Text, rec, nil
		}
		rec.Action = ActionError
		return req.Text, rec, &PluginError{Plugin: p.Name, Phase: req.Phase, Err: err}
	}
	rec.Action, rec.Reason, rec.Findings = v.Action, v.Reason, len(v.Findings)
	if v.Hold != nil {
		rec.Hold = *v.Hold
	}
	switch v.Action {
	case abi.Reject:
		return req.Text, rec, &RejectError{Plugin: p.Name, Reason: v.Reason, Phase: req.Phase}
	case abi.Modify:
		return v.Text, rec, nil
	}
	return req.Text, rec, nil
}
