package gateway

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/fault"
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
		if v.Cause != "" {
			m.PluginError(v.Name, v.Phase, v.Cause)
		}
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
	kind := "transport"
	if errors.Is(err, fault.UpstreamTimeout) {
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
