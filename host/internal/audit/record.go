package audit

import "time"

// Decisions recorded in Record.Decision.
const (
	// DecisionAllow means the request was served.
	DecisionAllow = "allow"
	// DecisionRefuse means moat refused the request (auth, limits, a plugin).
	DecisionRefuse = "refuse"
	// DecisionError means the request failed (upstream or gateway error).
	DecisionError = "error"
)

// Deciders recorded in Record.DecidedBy; a plugin is "plugin:" + its name.
const (
	ByAuth      = "auth"
	ByRateLimit = "rate_limit"
	ByBudget    = "budget"
	ByUpstream  = "upstream"
	ByGateway   = "gateway"
	// ByPluginPrefix prefixes a plugin's name ("plugin:pii").
	ByPluginPrefix = "plugin:"
)

// Record is one audit line: one per request, served or refused.
//
// Write fills Time, Environment, ContentMode, the content digests or texts
// and the chain fields (Seq, PrevHash, Hash); values set by the caller in
// those fields are overwritten, and every string field is replaced by its
// scrubbed form (Plugins by a scrubbed copy; the caller's slice is left
// alone), so rec shows what was written. Input and Output hold the raw request and
// response text; they are never written as-is except in "full" mode, and
// then only after secret scrubbing.
type Record struct {
	// Time is when Write was called, UTC, RFC 3339 with nanoseconds.
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id"`
	Environment string    `json:"environment,omitempty"`
	Client      string    `json:"client,omitempty"`
	User        string    `json:"user,omitempty"`
	SourceIP    string    `json:"source_ip,omitempty"`
	// Endpoint is the HTTP path template ("/v1/messages"); Route the named
	// prompt route, if any.
	Endpoint string `json:"endpoint,omitempty"`
	Route    string `json:"route,omitempty"`
	Model    string `json:"model,omitempty"`
	Stream   bool   `json:"stream"`
	// Status is the HTTP status returned to the client.
	Status int `json:"status"`
	// Decision is DecisionAllow, DecisionRefuse or DecisionError.
	Decision string `json:"decision"`
	// DecidedBy names who decided: ByAuth, ByRateLimit, ByBudget,
	// ByPluginPrefix+name, ByUpstream, ByGateway.
	DecidedBy string          `json:"decided_by,omitempty"`
	Plugins   []PluginVerdict `json:"plugins,omitempty"`

	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"`

	// Latency is the whole request; GatewayLatency the part spent in moat
	// (total minus upstream). Both are written in nanoseconds.
	Latency           time.Duration `json:"latency_ns"`
	GatewayLatency    time.Duration `json:"gateway_latency_ns"`
	UpstreamRequestID string        `json:"upstream_request_id,omitempty"`
	Error             string        `json:"error,omitempty"`
	// Cause, on a 5xx, is the internal error behind Error when Error (what
	// the client was told, such as "internal error") does not carry it.
	Cause string `json:"cause,omitempty"`
	// SampledOut, on the line of a request that never authenticated, is
	// how many such lines were left out (audit.unauthenticated_rate) since
	// the last one written.
	SampledOut int64 `json:"sampled_out,omitempty"`

	// Input and Output are the raw texts; never serialized.
	Input  string `json:"-"`
	Output string `json:"-"`

	// ContentMode is the mode the content fields were written in ("hmac",
	// "redacted", "full"); empty when content is off.
	ContentMode string `json:"content_mode,omitempty"`
	// InputHMAC and OutputHMAC are hex HMAC-SHA256 digests ("hmac" mode).
	InputHMAC  string `json:"input_hmac,omitempty"`
	OutputHMAC string `json:"output_hmac,omitempty"`
	// InputContent and OutputContent hold the redacted or full text.
	InputContent  string `json:"input_content,omitempty"`
	OutputContent string `json:"output_content,omitempty"`

	// Seq numbers records from 1 across rotated files; KeyID names the
	// chain key (empty in the old unkeyed format); PrevHash is the Hash of
	// the record before (64 zeros for the first); Hash is the hex
	// HMAC-SHA-256, under the chain key, of this line without its hash
	// field. They stay last in the line.
	Seq      uint64 `json:"seq,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// PluginVerdict is what one plugin decided about a request.
type PluginVerdict struct {
	Name string `json:"name"`
	// Phase is "input" or "output".
	Phase string `json:"phase"`
	// Action is the plugin's verdict ("allow", "modify", "reject", ...).
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Cause names why the plugin failed, from a closed set ("timeout",
	// "trap_stack_overflow", "saturated", ...; host/internal/pluginerr);
	// empty when it did not.
	Cause string `json:"cause,omitempty"`
	// Duration is the plugin's run time, written in nanoseconds.
	Duration time.Duration `json:"duration_ns"`
}
