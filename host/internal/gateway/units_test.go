package gateway

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// TestPageBounds: the page of GET /v1/models after or before an id.
func TestPageBounds(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e"}
	cases := []struct {
		name          string
		after, before string
		limit         int
		from, to      int
		more          bool
		bad           bool
	}{
		{name: "first page", limit: 2, from: 0, to: 2, more: true},
		{name: "all fit", limit: 5, from: 0, to: 5},
		{name: "after", after: "b", limit: 2, from: 2, to: 4, more: true},
		{name: "after to the end", after: "c", limit: 2, from: 3, to: 5},
		{name: "after the last", after: "e", limit: 2, from: 5, to: 5},
		{name: "before", before: "d", limit: 2, from: 1, to: 3, more: true},
		{name: "before near the start", before: "b", limit: 5, from: 0, to: 1},
		{name: "unknown after", after: "zz", limit: 2, bad: true},
		{name: "unknown before", before: "zz", limit: 2, bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from, to, more, err := pageBounds(ids, tc.after, tc.before, tc.limit)
			if tc.bad {
				if !errors.Is(err, fault.InvalidRequest) {
					t.Fatalf("err = %v, want a %s", err, fault.InvalidRequest)
				}
				return
			}
			if err != nil || from != tc.from || to != tc.to || more != tc.more {
				t.Fatalf("pageBounds = %d, %d, %v, %v; want %d, %d, %v", from, to, more, err, tc.from, tc.to, tc.more)
			}
		})
	}
}

// TestClientIP: X-Forwarded-For is believed only from a trusted proxy (a
// CIDR or a single address of server.trusted_proxies).
func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	cases := []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"no proxies", "10.1.2.3:5000", "203.0.113.9", nil, "10.1.2.3"},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.1, 203.0.113.9", proxies, "203.0.113.9"},
		{"single trusted address", "192.168.1.7:5000", "203.0.113.9", proxies, "203.0.113.9"},
		{"untrusted sender", "192.168.1.8:5000", "203.0.113.9", proxies, "192.168.1.8"},
		{"garbage header", "10.1.2.3:5000", "not-an-ip", proxies, "10.1.2.3"},
		{"mapped v4", "[::ffff:10.1.2.3]:5000", "", proxies, "10.1.2.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientIP(r, tc.trusted); got.String() != tc.want {
				t.Fatalf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}
