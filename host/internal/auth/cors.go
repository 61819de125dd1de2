package auth

import (
	"net/http"
	"strings"
)

// CORS headers moat allows browsers to send and lets them read.
const (
	corsAllowHeaders  = "x-api-key, authorization, content-type, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access"
	corsAllowMethods  = "GET, POST, OPTIONS"
	corsExposeHeaders = "request-id, retry-after, anthropic-ratelimit-requests-remaining, anthropic-ratelimit-tokens-remaining"
	corsMaxAge        = "600"
)

// CORSPolicy answers CORS for browser clients from each client's
// cors_origins. Origins are compared exactly, after lower-casing; there is
// no wildcard. The zero value allows no origin.
type CORSPolicy struct {
	// byOrigin maps an origin to the ids of clients listing it.
	byOrigin map[string]map[string]bool
}

// CORS builds the policy from the clients' CORSOrigins.
func CORS(clients []Client) *CORSPolicy {
	p := &CORSPolicy{byOrigin: map[string]map[string]bool{}}
	for _, cl := range clients {
		for _, o := range cl.CORSOrigins {
			o = normOrigin(o)
			if p.byOrigin[o] == nil {
				p.byOrigin[o] = map[string]bool{}
			}
			p.byOrigin[o][cl.ID] = true
		}
	}
	return p
}

func normOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// Preflight handles a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) and reports whether it did; the caller
// then stops processing. A preflight from an origin some client lists gets
// 204 with the Access-Control-Allow-* headers; any other gets 403 without
// them, so the browser refuses the real request. Preflights carry no
// credentials, so this cannot know the client: the actual request is
// checked again by Apply.
func (p *CORSPolicy) Preflight(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if r.Method != http.MethodOptions || origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if len(p.byOrigin[normOrigin(origin)]) == 0 {
		w.WriteHeader(http.StatusForbidden)
		return true
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// Apply sets the CORS headers of an actual (non-preflight) response: always
// Vary: Origin, and Access-Control-Allow-Origin only when the request has an
// Origin that the authenticated client (clientID) lists. Call it after
// authentication, for success and error responses alike; with clientID ""
// (not authenticated) no origin is allowed.
func (p *CORSPolicy) Apply(h http.Header, origin, clientID string) {
	if origin == "" {
		return
	}
	h.Add("Vary", "Origin")
	if clientID == "" || !p.byOrigin[normOrigin(origin)][clientID] {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}
