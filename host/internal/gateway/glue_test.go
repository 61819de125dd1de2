package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
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

func TestReadAll(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 500)
	boom := errors.New("boom")
	tests := []struct {
		name  string
		r     func() io.Reader
		hint  int64
		limit int64
		want  []byte
		err   error
	}{
		{"exact hint", func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), 1 << 20, body, nil},
		{"hint too small", func() io.Reader { return bytes.NewReader(body) }, 10, 1 << 20, body, nil},
		{"hint too large", func() io.Reader { return bytes.NewReader(body) }, 1 << 16, 1 << 20, body, nil},
		{"hint above limit", func() io.Reader { return bytes.NewReader(body) }, 1 << 21, 1 << 20, body, nil},
		{"unknown length", func() io.Reader { return bytes.NewReader(body) }, -1, 1 << 20, body, nil},
		{"one byte reads", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) }, int64(len(body)), 1 << 20, body, nil},
		{"empty", func() io.Reader { return strings.NewReader("") }, 0, 1 << 20, []byte{}, nil},
		{"error after data", func() io.Reader { return io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(boom)) }, int64(len(body)), 1 << 20, body[:100], boom},
		{"data and EOF together", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) }, int64(len(body)), 1 << 20, body, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.r(), tc.hint, tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
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
