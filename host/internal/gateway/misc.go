package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
)

// preflight answers CORS preflights for origins a client lists.
func (g *Gateway) preflight(c *gin.Context) {
	st := g.state.Load()
	if st.CORS != nil && st.CORS.Preflight(c.Writer, c.Request) {
		c.Abort()
		return
	}
	c.Status(http.StatusNoContent)
}

// filterModels keeps the models a client may use in a /v1/models list.
func filterModels(body []byte, allowed func(string) bool) []byte {
	var list map[string]json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		return body
	}
	var data []map[string]json.RawMessage
	if err := json.Unmarshal(list["data"], &data); err != nil {
		return body
	}
	kept := data[:0]
	for _, m := range data {
		var id string
		_ = json.Unmarshal(m["id"], &id)
		if allowed(id) {
			kept = append(kept, m)
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return body
	}
	list["data"] = b
	out, err := json.Marshal(list)
	if err != nil {
		return body
	}
	return out
}

// observe feeds a finished call to the metrics.
func (g *Gateway) observe(cl *call, rec *audit.Record) {
	m := g.deps.Metrics
	if m == nil {
		return
	}
	m.Request(rec.Endpoint, rec.Route, rec.Client, rec.Status, rec.Latency, rec.GatewayLatency)
	if rec.InputTokens+rec.OutputTokens+rec.CacheReadTokens+rec.CacheWriteTokens > 0 {
		m.Usage(rec.Client, rec.Model, rec.InputTokens, rec.OutputTokens, rec.CacheReadTokens, rec.CacheWriteTokens, rec.CostUSD)
	}
	for _, v := range rec.Plugins {
		m.PluginCall(v.Name, v.Phase, v.Action, v.Duration)
	}
	switch rec.DecidedBy {
	case audit.ByRateLimit, audit.ByBudget:
		m.LimitRefusal(rec.Client, rec.DecidedBy)
	}
}

// upstreamError counts an upstream failure.
func (g *Gateway) upstreamError(err error) {
	m := g.deps.Metrics
	if m == nil {
		return
	}
	var ae *anthropic.Error
	kind := "transport"
	if errors.As(err, &ae) && ae.Status == http.StatusGatewayTimeout {
		kind = "timeout"
	}
	m.UpstreamError(kind)
}

// readAll is io.ReadAll starting from a buffer of the announced size
// (Content-Length; -1 when unknown) plus one byte, so that a body of the
// announced size is read without growing the buffer. hint is trusted only
// up to limit, the most the caller will accept.
func readAll(r io.Reader, hint, limit int64) ([]byte, error) {
	if hint <= 0 || hint > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, hint+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			// More than announced: let append pick the next size.
			b = append(b, 0)[:len(b)]
		}
	}
}
