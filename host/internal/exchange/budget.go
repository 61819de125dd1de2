package exchange

import (
	"time"

	"github.com/moat-gateway/moat/host/internal/limit"
)

// identity is the caller as the limiter counts it.
func (c *Call) identity() limit.Identity {
	return limit.Identity{Client: c.Who.ClientID, User: c.Who.User}
}

// Admit applies rate limits and the in-flight cap; the limiter's headers
// go to the client.
func (c *Call) Admit() error {
	t, err := c.deps.Limiter.Admit(c.ctx, c.identity())
	if err != nil {
		return err
	}
	c.ticket = t
	t.CopyHeaders(c.resp.Header())
	return nil
}

// Reserve holds the worst-case cost of the call against every budget.
func (c *Call) Reserve(model string, estInput, maxOutput int64) error {
	r, err := c.deps.Limiter.Reserve(c.ctx, c.identity(), model, estInput, maxOutput)
	if err != nil {
		return err
	}
	c.res = r
	return nil
}

// Settle turns the reservation into the real usage.
func (c *Call) Settle() {
	if c.res == nil {
		return
	}
	u := limit.Usage{
		InputTokens:              c.usage.InputTokens,
		OutputTokens:             c.usage.OutputTokens,
		CacheCreationInputTokens: c.usage.CacheCreationInputTokens,
		CacheReadInputTokens:     c.usage.CacheReadInputTokens,
	}
	cost, err := c.res.Settle(c.background(), c.Model, u)
	if err != nil {
		c.deps.Logger.Error("settling budget", "request_id", c.ID, "err", err)
	}
	c.cost = cost
	c.res = nil
	c.deps.Anomaly.Spend(c.Who.ClientID, cost, time.Now())
}

// used reports whether upstream calls used tokens.
func (c *Call) used() bool {
	u := c.usage
	return u.InputTokens+u.OutputTokens+u.CacheCreationInputTokens+u.CacheReadInputTokens > 0
}
