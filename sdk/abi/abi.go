// Package abi holds the names and JSON types of moat's plugin ABI v1.
//
// It is the one leaf package that both the host (the gateway) and guests
// (plugins built with moat's SDK) import, so the contract is written down
// once. The full contract, for authors in other languages, is sdk/ABI.md.
package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the ABI version this package describes.
const Version = 1

// Names of the exports a plugin module provides.
const (
	// ExportMemory is the plugin's linear memory.
	ExportMemory = "memory"
	// ExportMarker is a function with no params and no results whose presence
	// declares that the module speaks ABI v1.
	ExportMarker = "moat_abi_v1"
	// ExportAlloc is moat_alloc(size i32) -> i32: a pointer to size writable
	// bytes, 0 on failure.
	ExportAlloc = "moat_alloc"
	// ExportInput is moat_input(ptr i32, len i32) -> i64, the input-phase hook.
	ExportInput = "moat_input"
	// ExportOutput is moat_output(ptr i32, len i32) -> i64, the output-phase hook.
	ExportOutput = "moat_output"
	// ExportInitialize is the optional reactor initializer, called once by the
	// host after instantiation.
	ExportInitialize = "_initialize"
	// ExportPhases is the optional moat_phases() -> i32: a bit mask
	// (PhaseBitInput, PhaseBitOutput) of the hooks the plugin really
	// handles, for toolchains (such as Go) that always export both hooks.
	// The host calls it once after _initialize.
	ExportPhases = "moat_phases"
)

// Bits of moat_phases' result.
const (
	PhaseBitInput  int32 = 1
	PhaseBitOutput int32 = 2
)

// Names of the imports a plugin may have. Any other import refuses the plugin.
const (
	// ImportModuleWASI is the WASI preview 1 module.
	ImportModuleWASI = "wasi_snapshot_preview1"
	// ImportModuleMoat is moat's own host module.
	ImportModuleMoat = "moat"
	// ImportLog is moat.log(level i32, ptr i32, len i32).
	ImportLog = "log"
	// ImportModuleEnv is the module of AssemblyScript's abort.
	ImportModuleEnv = "env"
	// ImportAbort is env.abort(msg i32, file i32, line i32, col i32).
	ImportAbort = "abort"
)

// Log levels for moat.log.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Phase says which side of the call a plugin is judging.
type Phase string

// Phases.
const (
	PhaseInput  Phase = "input"
	PhaseOutput Phase = "output"
)

// Hook returns the export name of the hook for the phase.
func (p Phase) Hook() string {
	if p == PhaseOutput {
		return ExportOutput
	}
	return ExportInput
}

// Action is what a plugin decided.
type Action string

// Actions.
const (
	// Allow passes the text on unchanged.
	Allow Action = "allow"
	// Modify replaces the text with Verdict.Text.
	Modify Action = "modify"
	// Reject stops the chain; the request or response is refused.
	Reject Action = "reject"
)

// Request is the JSON document the host writes into plugin memory per call.
type Request struct {
	Phase   Phase           `json:"phase"`
	Text    string          `json:"text"`
	Config  json.RawMessage `json:"config,omitempty"`
	Context Context         `json:"context"`
}

// DecodeConfig decodes the plugin's config table into v. An absent config
// leaves v unchanged.
func (r *Request) DecodeConfig(v any) error {
	if len(r.Config) == 0 || bytes.Equal(r.Config, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(r.Config, v); err != nil {
		return fmt.Errorf("decoding plugin config: %w", err)
	}
	return nil
}

// Context tells a plugin where the text comes from. Every field may be empty.
type Context struct {
	Route     string `json:"route"`
	Model     string `json:"model"`
	Client    string `json:"client"`
	User      string `json:"user"`
	RequestID string `json:"request_id"`
	// Kind says what sort of content the text is (one of the Kind*
	// constants); empty means KindText. Plugins may treat kinds differently
	// (tool JSON values, thinking, documents), or ignore the field.
	Kind string `json:"kind,omitempty"`
	// Role is the role of the message the text came from ("user",
	// "assistant", "system"); empty when the text is not part of a message.
	Role string `json:"role,omitempty"`
	// Path locates the text in the request or response, in the API's
	// error-path form (for example "messages.2.content.0.source.data").
	Path string `json:"path,omitempty"`
	// Partial is true when the text is the unreleased tail of a streamed
	// block and more text may follow: an output plugin that can tell how
	// much of the text's end could still change sets Verdict.Hold.
	Partial bool `json:"partial,omitempty"`
}

// Kinds of content, for Context.Kind. The set is closed per ABI version; a
// plugin that meets a kind it does not know should judge it as text.
const (
	// KindText is prose: a text block, a string content, a text delta.
	KindText = "text"
	// KindSystem is a system prompt (the top-level system field or a
	// system-role message).
	KindSystem = "system"
	// KindDocument is text inside a document block: its data, title or context.
	KindDocument = "document"
	// KindSearchResult is text inside a search_result block.
	KindSearchResult = "search_result"
	// KindToolResult is text a tool returned (tool_result content).
	KindToolResult = "tool_result"
	// KindToolInput is one string value inside a tool_use block's input JSON
	// (or a server_tool_use's input).
	KindToolInput = "tool_input"
	// KindToolDefinition is a tool's name, description or a string inside
	// its input_schema.
	KindToolDefinition = "tool_definition"
	// KindThinking is a thinking block's text. Thinking blocks are signed:
	// a modify verdict on them is refused (the request or response fails).
	KindThinking = "thinking"
	// KindCitation is cited text or a cited document's title.
	KindCitation = "citation"
	// KindURL is a URL the model or a server tool fetches (image, document
	// or search-result sources).
	KindURL = "url"
	// KindServerToolResult is text a server tool (web search, web fetch,
	// code execution) returned inside the response.
	KindServerToolResult = "server_tool_result"
	// KindError is the message of an error relayed from the upstream.
	KindError = "error"
)

// Finding locates one match of a rule in the text judged, as byte offsets.
type Finding struct {
	Rule  string `json:"rule"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// Verdict is the JSON document a plugin returns. The zero Verdict allows.
type Verdict struct {
	Action   Action    `json:"action"`
	Text     string    `json:"text"`
	Reason   string    `json:"reason,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	// Hold, on a Partial text, is how many trailing bytes of the text the
	// plugin judged could still be judged differently once more text
	// follows (a secret that may be starting, an entity not yet closed):
	// the host releases everything before them and keeps them back. Nil
	// means the plugin does not say, and the host keeps the plugin's
	// configured hold_back. 0 means nothing can change. The host ignores
	// Hold on whole texts and clamps it to the text's length.
	Hold *int `json:"hold,omitempty"`
}

// WithHold returns v with Hold set to n (negative counts as 0).
func (v Verdict) WithHold(n int) Verdict {
	n = max(n, 0)
	v.Hold = &n
	return v
}

// AllowVerdict returns a verdict that passes the text unchanged.
func AllowVerdict() Verdict { return Verdict{Action: Allow} }

// ModifyVerdict returns a verdict that replaces the text.
func ModifyVerdict(text, reason string) Verdict {
	return Verdict{Action: Modify, Text: text, Reason: reason}
}

// RejectVerdict returns a verdict that refuses the text.
func RejectVerdict(reason string) Verdict { return Verdict{Action: Reject, Reason: reason} }

// Errors returned by DecodeVerdict.
var (
	ErrBadVerdict    = errors.New("invalid verdict")
	ErrUnknownAction = errors.New("unknown action")
	ErrMissingText   = errors.New(`"text" is required for modify`)
)

// wireVerdict tells a missing "text" apart from an empty one.
type wireVerdict struct {
	Action   *Action   `json:"action"`
	Text     *string   `json:"text"`
	Reason   string    `json:"reason"`
	Findings []Finding `json:"findings"`
	Hold     *int      `json:"hold"`
}

// DecodeVerdict parses and checks a verdict: valid JSON, a known action, and
// text present for modify. Anything else is a plugin error.
func DecodeVerdict(b []byte) (Verdict, error) {
	var w wireVerdict
	if err := json.Unmarshal(b, &w); err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrBadVerdict, err)
	}
	if w.Action == nil {
		return Verdict{}, fmt.Errorf("%w: missing \"action\"", ErrBadVerdict)
	}
	v := Verdict{Action: *w.Action, Reason: w.Reason, Findings: w.Findings, Hold: w.Hold}
	if v.Hold != nil && *v.Hold < 0 {
		return Verdict{}, fmt.Errorf("%w: \"hold\" must not be negative", ErrBadVerdict)
	}
	switch v.Action {
	case Allow, Reject:
	case Modify:
		if w.Text == nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrBadVerdict, ErrMissingText)
		}
	default:
		return Verdict{}, fmt.Errorf("%w: %w %q", ErrBadVerdict, ErrUnknownAction, string(v.Action))
	}
	if w.Text != nil {
		v.Text = *w.Text
	}
	return v, nil
}

// PackResult encodes a hook's result: (ptr << 32) | len. Zero means allow.
func PackResult(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// UnpackResult splits a hook's result into pointer and length.
func UnpackResult(r uint64) (ptr, length uint32) { return uint32(r >> 32), uint32(r) }
