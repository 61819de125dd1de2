package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/config"
)

// defaultAPIVersion is sent when the client names none.
const defaultAPIVersion = "2023-06-01"

// relayedHeaders are request headers passed to the upstream untouched,
// besides anthropic-version and anthropic-beta: what the SDKs and Claude
// Code send to describe themselves. Credentials (x-api-key, authorization,
// cookies), anthropic-dangerous-direct-browser-access (moat calls the API
// from a server), hop-by-hop and forwarding headers are never relayed.
var relayedHeaders = []string{"user-agent", "x-app", "x-claude-code-session-id"}

// relayedHeaderPrefixes are prefixes of relayed request headers: the
// Stainless SDKs' x-stainless-* (language, version, retry count, timeout).
var relayedHeaderPrefixes = []string{"x-stainless-"}

// relayedQuery are the query parameters relayed on POST endpoints:
// beta=true, which the SDKs' beta namespace adds.
var relayedQuery = []string{"beta"}

// betas returns the anthropic-beta values the client sent, in order.
func (cl *call) betas() []string {
	var out []string
	for _, line := range cl.c.Request.Header.Values("anthropic-beta") {
		for _, b := range strings.Split(line, ",") {
			if b = strings.TrimSpace(b); b != "" {
				out = append(out, b)
			}
		}
	}
	return out
}

// checkBetas refuses, with server.unlisted_betas = "refuse", a request
// carrying an anthropic-beta value that server.allowed_betas does not list,
// naming it: a beta changes what the API does, so it is never dropped
// silently.
func (cl *call) checkBetas() error {
	srv := cl.st.Config.Server
	if len(srv.AllowedBetas) == 0 || srv.UnlistedBetas == config.BetasRelay {
		return nil
	}
	for _, b := range cl.betas() {
		if !slices.Contains(srv.AllowedBetas, b) {
			return anthropic.InvalidRequest("anthropic-beta: %q is not allowed by this gateway (server.allowed_betas)", b)
		}
	}
	return nil
}

// forwardHeaders picks the request headers the upstream may see: the API
// version, the betas (checked by checkBetas) and the client's
// self-description (relayedHeaders).
func (cl *call) forwardHeaders() http.Header {
	in := cl.c.Request.Header
	h := make(http.Header, 8)
	h.Set("content-type", "application/json")
	if v := in.Get("anthropic-version"); v != "" {
		h.Set("anthropic-version", v)
	} else {
		h.Set("anthropic-version", defaultAPIVersion)
	}
	if betas := cl.betas(); len(betas) > 0 {
		h.Set("anthropic-beta", strings.Join(betas, ","))
	}
	for k, vs := range in {
		if relayedHeader(k) {
			h[k] = slices.Clone(vs)
		}
	}
	return h
}

// relayedHeader reports, without allocating, whether the request header k
// (in any case) is in relayedHeaders or starts with one of
// relayedHeaderPrefixes.
func relayedHeader(k string) bool {
	for _, r := range relayedHeaders {
		if strings.EqualFold(k, r) {
			return true
		}
	}
	for _, p := range relayedHeaderPrefixes {
		if len(k) >= len(p) && strings.EqualFold(k[:len(p)], p) {
			return true
		}
	}
	return false
}

// forwardQuery returns the relayed query parameters ("?beta=true"), or "".
func (cl *call) forwardQuery() string {
	in := cl.c.Request.URL.Query()
	out := url.Values{}
	for _, k := range relayedQuery {
		if vs, ok := in[k]; ok {
			out[k] = vs
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "?" + out.Encode()
}

// copyResponseHeaders passes the upstream's request id, rate-limit and
// retry headers to the client; the organization id stays with moat.
func copyResponseHeaders(dst, src http.Header) {
	for k, vs := range src {
		if passedResponseHeader(k) {
			dst[k] = vs
		}
	}
}

// passedResponseHeader reports, without allocating, whether the upstream
// response header k reaches the client: request-id, retry-after and the
// anthropic-ratelimit-* family, in any case.
func passedResponseHeader(k string) bool {
	const rl = "anthropic-ratelimit-"
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 {
			// Not an HTTP token (the client refuses such names); lower-case
			// it, where Unicode case mapping applies.
			lk := strings.ToLower(k)
			return lk == "request-id" || lk == "retry-after" || strings.HasPrefix(lk, rl)
		}
	}
	return strings.EqualFold(k, "request-id") || strings.EqualFold(k, "retry-after") ||
		len(k) >= len(rl) && strings.EqualFold(k[:len(rl)], rl)
}

// firstValue is h.Get(key) for a key already in canonical form (as the
// HTTP client stores response headers), without canonicalizing it again.
func firstValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
