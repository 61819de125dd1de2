package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func mustKey(t testing.TB) (string, string) {
	t.Helper()
	k, h, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, h
}

func TestNewKey(t *testing.T) {
	shape := regexp.MustCompile(`^moat_[0-9A-Za-z]{43}$`)
	seen := map[string]bool{}
	for range 200 {
		k, h := mustKey(t)
		if !shape.MatchString(k) {
			t.Fatalf("key %q does not match %v", k, shape)
		}
		if h != HashKey(k) || len(h) != 64 {
			t.Fatalf("hash %q is not the hex SHA-256 of the key", h)
		}
		if seen[k] {
			t.Fatal("NewKey repeated a key")
		}
		seen[k] = true
	}
}

// prefixes parses CIDRs for a client's AllowIPs.
func prefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		out[i] = netip.MustParsePrefix(c)
	}
	return out
}

type keys struct {
	app, appExpired, appRevoked, appLater string
	office, backend, web, local           string
	// untrusted has a user_header but is not trusted (config check
	// refuses that; auth must too).
	untrusted string
}

// newTestAuth builds an Authenticator from a real parsed config.
func newTestAuth(t *testing.T) (*Authenticator, keys) {
	t.Helper()
	var k keys
	var h [9]string
	for i, p := range []*string{&k.app, &k.appExpired, &k.appRevoked, &k.appLater, &k.office, &k.backend, &k.web, &k.local, &k.untrusted} {
		*p, h[i] = mustKey(t)
	}
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	o := Options{Clients: []Client{
		{ID: "app", Keys: []Key{
			{SHA256: h[0]},
			{SHA256: h[1], Expires: at("2026-03-01T11:00:00Z")},
			{SHA256: h[2], Revoked: true},
			{SHA256: h[3], Expires: at("2026-04-01T00:00:00Z")},
		}},
		{ID: "office", Keys: []Key{{SHA256: h[4]}}, AllowIPs: prefixes(t, "10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32")},
		{ID: "backend", Keys: []Key{{SHA256: h[5]}}, Trusted: true, UserHeader: "x-end-user"}, // as an operator may write it
		{ID: "web", Keys: []Key{{SHA256: h[6]}}, CORSOrigins: []string{"https://app.example.com"}},
		{ID: "local-dev", Keys: []Key{{SHA256: h[7]}}},
		{ID: "untrusted", Keys: []Key{{SHA256: h[8]}}, UserHeader: "x-OWN-user"},
	}}
	a, err := newAuthenticator(o, func(string) string { return "" }, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return a, k
}

func TestAuthenticate(t *testing.T) {
	a, k := newTestAuth(t)
	anthropicKey := "sk-ant-" + "api03-" + strings.Repeat("Q", 40)
	ip := netip.MustParseAddr("203.0.113.9")
	type want struct {
		kind   fault.Kind // of the refusal; the zero kind (Internal), which auth never returns: served
		client string
		user   string
		msg    string // substring of the message
	}
	cases := []struct {
		name    string
		headers [][2]string
		ip      netip.Addr
		want    want
	}{
		{"x-api-key", [][2]string{{"X-Api-Key", k.app}}, ip, want{client: "app"}},
		{"bearer", [][2]string{{"Authorization", "Bearer " + k.app}}, ip, want{client: "app"}},
		{"bearer scheme case", [][2]string{{"Authorization", "bearer " + k.app}}, ip, want{client: "app"}},
		{"both equal", [][2]string{{"X-Api-Key", k.app}, {"Authorization", "Bearer " + k.app}}, ip, want{client: "app"}},
		{"both different", [][2]string{{"X-Api-Key", k.app}, {"Authorization", "Bearer " + k.web}}, ip, want{kind: fault.Unauthenticated, msg: "different"}},
		{"x-api-key and basic", [][2]string{{"X-Api-Key", k.app}, {"Authorization", "Basic " + k.app}}, ip, want{kind: fault.Unauthenticated, msg: "different"}},
		{"two x-api-key", [][2]string{{"X-Api-Key", k.app}, {"X-Api-Key", k.app}}, ip, want{kind: fault.Unauthenticated, msg: "more than one x-api-key"}},
		{"two x-api-key different", [][2]string{{"X-Api-Key", k.web}, {"X-Api-Key", k.app}}, ip, want{kind: fault.Unauthenticated, msg: "more than one x-api-key"}},
		{"two authorization", [][2]string{{"Authorization", "Bearer " + k.app}, {"Authorization", "Bearer " + k.app}}, ip, want{kind: fault.Unauthenticated, msg: "more than one Authorization"}},
		{"basic only", [][2]string{{"Authorization", "Basic " + k.app}}, ip, want{kind: fault.Unauthenticated, msg: "Bearer"}},
		{"missing", nil, ip, want{kind: fault.Unauthenticated, msg: "missing API key"}},
		{"empty x-api-key", [][2]string{{"X-Api-Key", ""}}, ip, want{kind: fault.Unauthenticated, msg: "missing API key"}},
		{"unknown key", [][2]string{{"X-Api-Key", "moat_" + strings.Repeat("a", 43)}}, ip, want{kind: fault.Unauthenticated, msg: "invalid API key"}},
		{"key with extra char", [][2]string{{"X-Api-Key", k.app + "x"}}, ip, want{kind: fault.Unauthenticated, msg: "invalid API key"}},
		{"hash instead of key", [][2]string{{"X-Api-Key", HashKey(k.app)}}, ip, want{kind: fault.Unauthenticated, msg: "invalid API key"}},
		{"huge key", [][2]string{{"X-Api-Key", "moat_" + strings.Repeat("a", 10000)}}, ip, want{kind: fault.Unauthenticated, msg: "invalid API key"}},
		{"non-moat bearer, jwt off", [][2]string{{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}}, ip, want{kind: fault.Unauthenticated, msg: "invalid API key"}},
		{"anthropic key", [][2]string{{"X-Api-Key", anthropicKey}}, ip, want{kind: fault.Unauthenticated, msg: "Anthropic API key"}},
		{"expired key", [][2]string{{"X-Api-Key", k.appExpired}}, ip, want{kind: fault.Unauthenticated, client: "app", msg: "expired"}},
		{"revoked key", [][2]string{{"X-Api-Key", k.appRevoked}}, ip, want{kind: fault.Unauthenticated, client: "app", msg: "revoked"}},
		{"key in rotation window", [][2]string{{"X-Api-Key", k.appLater}}, ip, want{client: "app"}},
		{"local client", [][2]string{{"X-Api-Key", k.local}}, ip, want{client: "local-dev"}},
		{"allowlist cidr", [][2]string{{"X-Api-Key", k.office}}, netip.MustParseAddr("10.1.2.3"), want{client: "office"}},
		{"allowlist single", [][2]string{{"X-Api-Key", k.office}}, netip.MustParseAddr("192.0.2.7"), want{client: "office"}},
		{"allowlist mapped v4", [][2]string{{"X-Api-Key", k.office}}, netip.MustParseAddr("::ffff:10.9.9.9"), want{client: "office"}},
		{"allowlist v6", [][2]string{{"X-Api-Key", k.office}}, netip.MustParseAddr("2001:db8::1"), want{client: "office"}},
		{"allowlist outside", [][2]string{{"X-Api-Key", k.office}}, netip.MustParseAddr("192.0.2.8"), want{kind: fault.Forbidden, client: "office", msg: "address"}},
		{"allowlist no ip", [][2]string{{"X-Api-Key", k.office}}, netip.Addr{}, want{kind: fault.Forbidden, client: "office"}},
		{"trusted names user", [][2]string{{"X-Api-Key", k.backend}, {"X-End-User", "alice"}}, ip, want{client: "backend", user: "alice"}},
		{"trusted without user", [][2]string{{"X-Api-Key", k.backend}}, ip, want{client: "backend"}},
		{"trusted two users", [][2]string{{"X-Api-Key", k.backend}, {"X-End-User", "alice"}, {"X-End-User", "bob"}}, ip, want{kind: fault.InvalidRequest, client: "backend"}},
		{"trusted control char user", [][2]string{{"X-Api-Key", k.backend}, {"X-End-User", "al\x01ice"}}, ip, want{kind: fault.InvalidRequest, client: "backend"}},
		{"trusted long user", [][2]string{{"X-Api-Key", k.backend}, {"X-End-User", strings.Repeat("u", 300)}}, ip, want{kind: fault.InvalidRequest, client: "backend"}},
		{"trusted other header", [][2]string{{"X-Api-Key", k.backend}, {"X-Moat-User", "alice"}}, ip, want{kind: fault.Forbidden, client: "backend", msg: "X-Moat-User"}},
		{"user header without trust", [][2]string{{"X-Api-Key", k.untrusted}, {"X-Own-User", "alice"}}, ip, want{kind: fault.Forbidden, client: "untrusted", msg: "may not name end users"}},
		{"untrusted names user", [][2]string{{"X-Api-Key", k.web}, {"X-End-User", "alice"}}, ip, want{kind: fault.Forbidden, client: "web", msg: "may not name end users"}},
		{"untrusted default header", [][2]string{{"X-Api-Key", k.app}, {"x-moat-user", "alice"}}, ip, want{kind: fault.Forbidden, client: "app"}},
		{"untrusted unrelated header ignored", [][2]string{{"X-Api-Key", k.app}, {"X-Something", "alice"}}, ip, want{client: "app"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			id, err := a.Authenticate(r, tc.ip)
			if tc.want.kind == fault.Internal {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.ClientID != tc.want.client || id.User != tc.want.user || id.Via != ViaKey || len(id.KeyHash) != 8 {
					t.Fatalf("identity = %+v, want client %q user %q via key", id, tc.want.client, tc.want.user)
				}
				return
			}
			var ae *fault.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v (%T), want *fault.Error", err, err)
			}
			if ae.Kind != tc.want.kind {
				t.Fatalf("got %s (%q), want %s", ae.Kind, ae.Msg, tc.want.kind)
			}
			if !strings.Contains(ae.Msg, tc.want.msg) {
				t.Fatalf("message %q lacks %q", ae.Msg, tc.want.msg)
			}
			if id.ClientID != tc.want.client {
				t.Fatalf("identity on refusal names %q, want %q", id.ClientID, tc.want.client)
			}
			for _, h := range tc.headers {
				v := strings.TrimPrefix(strings.TrimPrefix(h[1], "Bearer "), "Basic ")
				if len(v) > 8 && strings.Contains(ae.Msg, v) {
					t.Fatalf("message %q contains the presented credential", ae.Msg)
				}
			}
		})
	}
}

func TestNewRefusesBadClients(t *testing.T) {
	_, h := mustKey(t)
	a := Client{ID: "a", Keys: []Key{{SHA256: h}}}
	cases := []struct {
		name string
		more []Client
		jwt  *JWT
		want string
	}{
		{"shared hash", []Client{{ID: "b", Keys: []Key{{SHA256: h}}}}, nil, "shares a key hash"},
		{"bad hash", []Client{{ID: "b", Keys: []Key{{SHA256: "moat_notahash"}}}}, nil, "64 hex"},
		{"same id", []Client{{ID: "a"}}, nil, "defined twice"},
		{"no id", []Client{{}}, nil, "without an id"},
		{"jwt client unknown", nil, &JWT{Client: "nope", Algorithms: []string{"HS256"}}, "names no client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Clients: append([]Client{a}, tc.more...), JWT: tc.jwt})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestRevokedWinsOverDuplicateActiveEntry(t *testing.T) {
	k, h := mustKey(t)
	a, err := New(Options{Clients: []Client{{ID: "a", Keys: []Key{{SHA256: h}, {SHA256: h, Revoked: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("X-Api-Key", k)
	if _, err := a.Authenticate(r, netip.Addr{}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a hash listed as key_sha256 and as revoked authenticated: %v", err)
	}
}

func TestExpiryUsesClock(t *testing.T) {
	a, k := newTestAuth(t)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("X-Api-Key", k.appLater)
	if _, err := a.Authenticate(r, netip.Addr{}); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	a.now = func() time.Time { return time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) }
	if _, err := a.Authenticate(r, netip.Addr{}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at expiry: %v, want expired", err)
	}
}
