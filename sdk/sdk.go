// Package sdk is moat's Go API for writing plugins.
//
// A plugin registers a Handler per phase from an init function, and is
// built for the sandbox with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm ./path
//
// The wasip1 build exports ABI v2 (sdk/ABI.md): moat_abi_v2, moat_alloc,
// moat_input, moat_output and moat_phases, and hides memory and the binary
// request and verdict layouts from the handler. A call reuses the request
// and verdict buffers and allocates one copy of the request's strings;
// decode the config with a Config (once per distinct config, not per call)
// and match phrases with Phrases. Handlers must be registered in init: a c-shared (reactor) build
// runs package initializers from _initialize but never calls main.
//
// The same handlers run natively: package sdktest calls them in plain
// go test, and the host can run trusted plugins in-process.
package sdk

import (
	"encoding/json"
	"fmt"

	"github.com/moat-gateway/moat/sdk/abi"
)

// Request is what a handler judges: the phase, the text, the plugin's
// config table and where the text comes from.
type Request = abi.Request

// Verdict is a handler's decision. The zero Verdict is invalid; use Allow,
// Modify or Reject.
type Verdict = abi.Verdict

// Finding locates one match of a rule in the text, as byte offsets.
type Finding = abi.Finding

// Handler judges one request. In the sandbox the request's strings share
// the SDK's request buffer, which the next call overwrites: they are valid
// until the handler returns, so clone (strings.Clone) any you keep for
// later. The config (Request.Config) stays valid across calls.
type Handler func(Request) Verdict

// Log levels for Log.
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Allow passes the text on unchanged.
func Allow() Verdict { return abi.AllowVerdict() }

// Modify replaces the text; reason says why (it is logged and audited).
func Modify(text, reason string) Verdict { return abi.ModifyVerdict(text, reason) }

// Reject refuses the text; reason says why.
func Reject(reason string) Verdict { return abi.RejectVerdict(reason) }

var handlers [2]Handler // input, output

// HandleInput registers the input-phase handler, replacing any earlier one.
// Call it from init.
func HandleInput(h Handler) { handlers[0] = h }

// HandleOutput registers the output-phase handler, replacing any earlier
// one. Call it from init.
func HandleOutput(h Handler) { handlers[1] = h }

// Registered returns the handler registered for the phase, or nil.
func Registered(phase abi.Phase) Handler {
	switch phase {
	case abi.PhaseInput:
		return handlers[0]
	case abi.PhaseOutput:
		return handlers[1]
	}
	return nil
}

// noHandlerAction is the action the SDK answers a phase without handler
// with: unknown to the host, so the call fails closed as a plugin error.
const noHandlerAction = "none"

// Dispatch runs h on an ABI v1 (JSON) request and
// returns the JSON verdict, or nil for a plain allow (the ABI's 0). A nil h,
// or a request that is not valid JSON, gives a verdict the host refuses as a
// plugin error. A panic in h propagates.
func Dispatch(h Handler, request []byte) []byte {
	var req Request
	if err := json.Unmarshal(request, &req); err != nil {
		return invalid(fmt.Sprintf("sdk: decoding request: %v", err))
	}
	if h == nil {
		return invalid(fmt.Sprintf("no handler for phase %s", req.Phase))
	}
	v := h(req)
	if v.Action == abi.Allow && v.Reason == "" && len(v.Findings) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return invalid(fmt.Sprintf("sdk: encoding verdict: %v", err))
	}
	return b
}

func invalid(reason string) []byte {
	b, _ := json.Marshal(map[string]string{"action": noHandlerAction, "reason": reason})
	return b
}
