package gateway

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

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
