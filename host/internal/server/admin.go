package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/console"
)

// adminError writes an Anthropic-shaped error on the admin listener.
func adminError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(anthropic.EncodeError(typ, msg, ""))
}

// adminTokenCheck returns the wrapper that requires the admin bearer token.
// Wrong tokens are throttled per source address like console logins (and
// counted in the same throttle): once an address has used up its failures
// for the minute, it is refused (429) before its token is compared, even
// the right one, so guessing cannot go on from it.
func adminTokenCheck(token, tokenEnv string, throttle *auth.Throttle, now func() time.Time) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte("Bearer " + token))
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr := sourceHost(r)
			t := now()
			ok, until := throttle.Attempt(addr, t)
			if !ok {
				w.Header().Set("retry-after", strconv.Itoa(max(1, int(until.Sub(t).Seconds()+0.999))))
				adminError(w, http.StatusTooManyRequests, anthropic.TypeRateLimit, "too many wrong admin tokens from this address; wait a minute")
				return
			}
			got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
			if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				adminError(w, http.StatusUnauthorized, anthropic.TypeAuthentication, "admin token required (Authorization: Bearer $"+tokenEnv+")")
				return
			}
			throttle.Succeeded(addr, t)
			h.ServeHTTP(w, r)
		})
	}
}

func sourceHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newAdminThrottle is the throttle the admin API and the console share.
func newAdminThrottle() *auth.Throttle { return auth.NewThrottle(console.MaxLoginFailures) }

// hostGuard refuses requests to the admin listener whose Host is not one
// it is configured for, so that a web page cannot reach it through a DNS
// name rebound to 127.0.0.1 (the browser then sends the attacker's name as
// Host). Allowed: localhost, loopback addresses, the listen host, the names
// in admin.allowed_hosts, and, when the listener is bound to every
// interface, any IP literal (a page cannot make a browser send an IP
// literal Host for its own origin without being served from that IP). It
// also refuses a state-changing request (any method but GET, HEAD,
// OPTIONS) whose Origin is not the listener's own, or that a browser marks
// as cross-site, so a page cannot drive the admin API with a form post.
type hostGuard struct {
	names map[string]bool
	anyIP bool
	next  http.Handler
}

func newHostGuard(a config.Admin, next http.Handler) *hostGuard {
	g := &hostGuard{names: map[string]bool{"localhost": true}, next: next}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		host = a.Listen
	}
	host = normalHost(host)
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		g.anyIP = true
	} else {
		g.names[host] = true
	}
	for _, h := range a.AllowedHosts {
		g.names[normalHost(h)] = true
	}
	return g
}

// normalHost lowercases a host name, drops IPv6 brackets and a trailing
// dot.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

// hostOK reports whether hostport (a Host header or an Origin's host)
// names this listener.
func (g *hostGuard) hostOK(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = normalHost(host)
	if host == "" {
		return false
	}
	if g.names[host] {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.IsLoopback() || g.anyIP
}

func (g *hostGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostOK(r.Host) {
		adminError(w, http.StatusMisdirectedRequest, anthropic.TypePermission, "this Host is not one the admin listener serves (admin.allowed_hosts)")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !sameOriginAdmin(r) {
			adminError(w, http.StatusForbidden, anthropic.TypePermission, "cross-origin request to the admin listener refused")
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// sameOriginAdmin checks a state-changing request's Origin against its own
// Host (the Host itself was checked first), falling back to
// Sec-Fetch-Site. A request with neither is not from a browser page.
func sameOriginAdmin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return false // "null" included
		}
		return strings.EqualFold(u.Host, r.Host)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	return true
}
