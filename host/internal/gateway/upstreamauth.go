package gateway

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// keyHealth tracks whether the upstream accepts moat's own key. A 401 or
// 403 from the upstream is the gateway's problem, not the caller's: it marks
// the key rejected (logged, counted, /readyz not ready) until an upstream
// call succeeds again.
type keyHealth struct {
	rejected atomic.Bool
	// since is when the key was first seen rejected (unix nanoseconds).
	since atomic.Int64
	// probeMu serializes /readyz probes; lastProbe rate-limits them.
	probeMu   sync.Mutex
	lastProbe time.Time
}

// probeEvery is the least time between two /readyz probes of a rejected key.
const probeEvery = 2 * time.Second

// noteUpstream records what an upstream status says about moat's key.
func (g *Gateway) noteUpstream(status int) {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		fp := g.keyFingerprint()
		if g.keys.rejected.CompareAndSwap(false, true) {
			g.keys.since.Store(time.Now().UnixNano())
		}
		g.deps.Logger.Error("upstream rejected the gateway's API key: check upstream.api_key_env / api_key_file", "status", status, "key", fp)
		if m := g.deps.Metrics; m != nil {
			m.UpstreamError("auth_rejected")
		}
	case status >= 200 && status < 300:
		if g.keys.rejected.CompareAndSwap(true, false) {
			g.deps.Logger.Info("upstream accepts the gateway's API key again", "key", g.keyFingerprint())
		}
	}
}

func (g *Gateway) keyFingerprint() string {
	if g.deps.KeyFingerprint == nil {
		return "unknown"
	}
	return g.deps.KeyFingerprint()
}

// UpstreamKeyRejected reports whether the upstream's last verdict on moat's
// key was a rejection, and since when.
func (g *Gateway) UpstreamKeyRejected() (bool, time.Time) {
	if !g.keys.rejected.Load() {
		return false, time.Time{}
	}
	return true, time.Unix(0, g.keys.since.Load())
}

// probeKey asks the upstream, at most once per probeEvery, whether it now
// accepts moat's key (a rotated key file, a re-enabled key): a cheap
// GET /v1/models?limit=1. Without it a not-ready gateway would get no
// traffic, and so never see the call that makes it ready again.
func (g *Gateway) probeKey(ctx context.Context) {
	g.keys.probeMu.Lock()
	defer g.keys.probeMu.Unlock()
	if time.Since(g.keys.lastProbe) < probeEvery {
		return
	}
	g.keys.lastProbe = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("anthropic-version", "2023-06-01")
	resp, _, err := g.State().Upstream.Do(ctx, http.MethodGet, "/v1/models?limit=1", nil, h)
	if err != nil {
		return
	}
	resp.Body.Close()
	g.noteUpstream(resp.StatusCode)
}
