package mdlinks

import (
	"fmt"
	"html"
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// hostProfile converts a host to its ASCII (Punycode) form the way a
// browser looks it up.
var hostProfile = idna.Lookup

// normalizeHost lower-cases a host, percent-decodes it, drops one trailing
// dot and converts it to ASCII. ok is false for a host a browser would not
// look up as written.
func normalizeHost(h string) (string, bool) {
	if strings.Contains(h, "%") {
		d, err := url.PathUnescape(h)
		if err != nil {
			return "", false
		}
		h = d
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", false
	}
	a, err := hostProfile.ToASCII(h)
	if err != nil || a == "" {
		return "", false
	}
	return strings.ToLower(a), true
}

// parseAllow normalizes the configured hosts.
func parseAllow(hosts []string) (map[string]bool, error) {
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if strings.ContainsAny(h, "/:@\\?# ") {
			return nil, fmt.Errorf("allow_domains: %q is not a host name (no scheme, port, path or user)", h)
		}
		n, ok := normalizeHost(h)
		if !ok {
			return nil, fmt.Errorf("allow_domains: %q is not a valid host name", h)
		}
		m[n] = true
	}
	return m, nil
}

// safeTarget reports whether a link target, as the browser will see it
// (after entity decoding), may stay: an http or https URL whose host is in
// allow, or a fragment of the same page ("#..."). Everything else is
// neutralized: other schemes (javascript:, data:, vbscript:, file:,
// mailto:...), protocol-relative and relative URLs, user-info
// ("https://allowed@evil"), and hosts that do not normalize.
func safeTarget(target string, allow map[string]bool) bool {
	// Browsers drop ASCII tab and newline anywhere in a URL and trim C0
	// controls and spaces at both ends.
	s := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, target)
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if strings.HasPrefix(s, "#") {
		return true
	}
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return false // relative or protocol-relative
	}
	scheme := strings.ToLower(s[:colon])
	if scheme != "http" && scheme != "https" {
		return false
	}
	// Special schemes: any run of slashes and backslashes starts the
	// authority ("https:evil.com", "https:/\\evil.com").
	rest := strings.TrimLeft(s[colon+1:], `/\`)
	end := strings.IndexAny(rest, `/\?#`)
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	if strings.Contains(auth, "@") || strings.Contains(auth, "%40") {
		return false // user-info hides the real host
	}
	host := auth
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.HasSuffix(auth, "]") {
		port := auth[i+1:]
		for _, c := range port {
			if c < '0' || c > '9' {
				return false
			}
		}
		host = auth[:i]
	}
	n, ok := normalizeHost(host)
	return ok && allow[n]
}

// decodeMarkdownTarget is what a CommonMark renderer makes of a raw link
// destination: backslash escapes removed and entities decoded.
func decodeMarkdownTarget(raw []byte) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) && isASCIIPunct(raw[i+1]) {
			i++
		}
		b.WriteByte(raw[i])
	}
	return html.UnescapeString(b.String())
}

func isASCIIPunct(c byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0
}
