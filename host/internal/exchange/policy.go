package exchange

import (
	"strings"
	"time"
)

// Options are what one config says about every call. The zero value keeps
// no content for the audit trail, fails closed when the audit log fails,
// and bounds neither the upstream's time nor its answer's size.
type Options struct {
	// KeepContent collects requests' and answers' text for the audit
	// trail (audit.content other than "off").
	KeepContent bool
	// UnauthenticatedRate is the rate at which unauthenticated calls'
	// audit lines are admitted (audit.unauthenticated_rate), passed to
	// Deps.Sample; "" leaves it to Sample.
	UnauthenticatedRate string
	// FailOpen serves calls when the audit log cannot be written
	// (audit.fail_open); false refuses them.
	FailOpen bool
	// Timeout bounds a whole non-streaming upstream call; zero: no bound.
	Timeout time.Duration
	// MaxResponseBytes caps a non-streaming upstream answer and the tool
	// input a stream buffers; zero: no cap of moat's own.
	MaxResponseBytes int64
	// StreamIdle fails a stream whose upstream is silent that long, and
	// MaxStreamDuration one that lasts longer; zero: no bound.
	StreamIdle        time.Duration
	MaxStreamDuration time.Duration
}

// Client is what the exchange enforces for one client. The zero value
// allows every model and any max_tokens, leaves the system prompt to the
// caller, judges every part, wraps nothing, sets no canary and trusts no
// metadata.user_id.
type Client struct {
	// Models the client may use ("prefix*" matches a prefix); empty
	// allows all.
	Models []string
	// MaxTokens caps a request's max_tokens; 0: no cap.
	MaxTokens int
	// System is the system-prompt policy (anthropic.SystemClient,
	// SystemPin, SystemPrepend); "" is SystemClient.
	System string
	// SystemPrompt is the gateway's system prompt for SystemPin and
	// SystemPrepend.
	SystemPrompt string
	// Judge lists the parts the input chain judges ("user", "assistant",
	// "system", "tools") for a trusted client's key callers; empty judges
	// all.
	Judge []string
	// WrapUserInput wraps user data in untrusted-data tags named Tag (""
	// is prompt.DefaultTag).
	WrapUserInput bool
	Tag           string
	// Canary puts a per-request canary in the system prompt and refuses
	// output that contains it.
	Canary bool
	// Trusted lets the client name its end user in metadata.user_id and
	// exempt parts from judging (Judge).
	Trusted bool
}

// AllowsModel reports whether the client may use model.
func (cl *Client) AllowsModel(model string) bool {
	if len(cl.Models) == 0 {
		return true
	}
	for _, m := range cl.Models {
		if m == model || (strings.HasSuffix(m, "*") && strings.HasPrefix(model, strings.TrimSuffix(m, "*"))) {
			return true
		}
	}
	return false
}

// Judges reports whether the input chain judges part for this client
// (see Judge); callers apply it only to a trusted client's key callers.
func (cl *Client) Judges(part string) bool {
	if len(cl.Judge) == 0 {
		return true
	}
	for _, p := range cl.Judge {
		if p == part {
			return true
		}
	}
	return false
}

// noClient is the policy of a caller that is no configured client.
var noClient Client

// ClientPolicy returns the policy of the call's client (Who.ClientID); the
// zero Client when it is no configured client.
func (c *Call) ClientPolicy() *Client {
	if c.pol.Clients != nil {
		if cl := c.pol.Clients(c.Who.ClientID); cl != nil {
			return cl
		}
	}
	return &noClient
}
