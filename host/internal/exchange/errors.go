package exchange

import (
	"errors"
	"net/http"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// APIError is an error as the client gets it, in Anthropic's shape; the
// edge's one mapping (Deps.Told) makes it from a fault.
type APIError struct {
	Status  int
	Type    string
	Message string
	// Header holds extra response headers (retry-after, X-RateLimit-*).
	Header http.Header
	// Upstream is set when Message quotes the upstream: it is judged by
	// the output chain and scrubbed before the client sees it.
	Upstream bool
}

// Body encodes e as Anthropic's JSON error body.
func (e *APIError) Body(requestID string) []byte {
	return anthropic.EncodeError(e.Type, e.Message, requestID)
}

// Event is e as an SSE "error" event.
func (e *APIError) Event() anthropic.Event { return anthropic.ErrorEvent(e.Type, e.Message) }

// AuditFailure is the refusal of a call whose record could not be written
// (or whose trail is unhealthy) while audit is fail-closed: the audit's own
// fault.AuditUnavailable, or err made one.
func AuditFailure(err error) error {
	if errors.Is(err, fault.AuditUnavailable) {
		return err
	}
	return fault.Wrap(fault.AuditUnavailable, err, audit.MsgUnavailable)
}
