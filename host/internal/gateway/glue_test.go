package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// oldPassed is copyResponseHeaders' filter before it stopped lower-casing
// every key: the reference of TestPassedResponseHeader.
func oldPassed(k string) bool {
	lk := strings.ToLower(k)
	return lk == "request-id" || lk == "retry-after" || strings.HasPrefix(lk, "anthropic-ratelimit-")
}

func TestPassedResponseHeader(t *testing.T) {
	keys := []string{
		"Request-Id", "request-id", "REQUEST-ID", "Request-Ids", "X-Request-Id", "Retry-After", "retry-after-ms",
		"Anthropic-Ratelimit-Requests-Limit", "anthropic-ratelimit-tokens-reset", "Anthropic-Ratelimit-", "Anthropic-Ratelimit",
		"Anthropic-Organization-Id", "Set-Cookie", "Content-Type", "", "Anthropic-Ratelimit-\u212a", "Request-\u0130d",
	}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			if got, want := passedResponseHeader(k), oldPassed(k); got != want {
				t.Errorf("passedResponseHeader(%q) = %v, want %v", k, got, want)
			}
		})
	}
	dst := http.Header{}
	copyResponseHeaders(dst, http.Header{"Request-Id": {"r1"}, "Anthropic-Organization-Id": {"org"}, "Set-Cookie": {"c"}, "Anthropic-Ratelimit-Tokens-Limit": {"9"}})
	if len(dst) != 2 || dst.Get("Request-Id") != "r1" || dst.Get("Anthropic-Ratelimit-Tokens-Limit") != "9" {
		t.Errorf("copied %v", dst)
	}
}

func FuzzPassedResponseHeader(f *testing.F) {
	f.Add("Anthropic-Ratelimit-Requests-Limit")
	f.Add("request-id")
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := passedResponseHeader(k), oldPassed(k); got != want {
			t.Fatalf("passedResponseHeader(%q) = %v, want %v", k, got, want)
		}
	})
}

func TestFirstValue(t *testing.T) {
	h := http.Header{}
	h.Set("request-id", "a")
	h.Add("request-id", "b")
	if got := firstValue(h, "Request-Id"); got != "a" {
		t.Errorf("firstValue = %q, want a", got)
	}
	if got := firstValue(h, "Missing"); got != "" {
		t.Errorf("firstValue of a missing key = %q", got)
	}
}

func TestRelayedHeader(t *testing.T) {
	for k, want := range map[string]bool{
		"User-Agent": true, "user-agent": true, "X-App": true, "X-Claude-Code-Session-Id": true,
		"X-Stainless-Lang": true, "x-stainless-retry-count": true, "X-Stainless": false,
		"X-Api-Key": false, "Authorization": false, "Cookie": false, "Anthropic-Dangerous-Direct-Browser-Access": false,
		"X-Forwarded-For": false, "": false, "User-Agent2": false,
	} {
		if got := relayedHeader(k); got != want {
			t.Errorf("relayedHeader(%q) = %v, want %v", k, got, want)
		}
	}
}
