package gateway

import (
	"errors"
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
	var ae *anthropic.Error
	kind := "transport"
	if errors.As(err, &ae) && ae.Status == http.StatusGatewayTimeout {
		kind = "timeout"
	}
	m.UpstreamError(kind)
}
