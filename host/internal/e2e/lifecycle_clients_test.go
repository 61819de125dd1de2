package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientKeyLifecycle: a client with a rotation window (two active
// keys), an expired key, a revoked key and a key that expires while moat
// runs.
func TestClientKeyLifecycle(t *testing.T) {
	k2, h2 := lcNewKey(t)
	expired, hExpired := lcNewKey(t)
	revoked, hRevoked := lcNewKey(t)
	soon, hSoon := lcNewKey(t)
	soonAt := time.Now().Add(1500 * time.Millisecond).UTC()
	e := start(t, envOpts{client: fmt.Sprintf(`
[[clients.keys]]
sha256 = %q
note = "next key, rotation window"
[[clients.keys]]
sha256 = %q
expires = 2001-01-01T00:00:00Z
[[clients.keys]]
sha256 = %q
revoked = true
[[clients.keys]]
sha256 = %q
expires = %s
`, h2, hExpired, hRevoked, hSoon, soonAt.Format(time.RFC3339Nano))})

	cases := []struct {
		name, key string
		status    int
		msg       string
	}{
		{"current key", e.key, 200, ""},
		{"next key in the window", k2, 200, ""},
		{"expired key", expired, 401, "API key expired"},
		{"revoked key", revoked, 401, "API key revoked"},
		{"key before its expiry", soon, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := e.lcCall(tc.key, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if tc.msg != "" {
				typ, msg := errorBody(t, b)
				if typ != "authentication_error" || !strings.Contains(msg, tc.msg) {
					t.Fatalf("error %s %q, want authentication_error with %q", typ, msg, tc.msg)
				}
			}
		})
	}
	t.Run("key expires while running", func(t *testing.T) {
		time.Sleep(time.Until(soonAt) + 50*time.Millisecond)
		status, _, b := e.lcCall(soon, nil)
		if status != 401 || !strings.Contains(string(b), "API key expired") {
			t.Fatalf("status %d after expiry: %s", status, b)
		}
		if status, _, _ := e.lcCall(k2, nil); status != 200 {
			t.Fatalf("other key stopped working: %d", status)
		}
	})
	t.Run("refusals audited without the key", func(t *testing.T) {
		refused := e.lcAuditWith(func(r map[string]any) bool { return r["decided_by"] == "auth" })
		if len(refused) < 3 {
			t.Fatalf("%d auth refusals audited, want 3", len(refused))
		}
		lcNoSecret(t, "the audit trail", strings.Join(e.auditLines(), "\n"), e.key, k2, expired, revoked, soon)
		lcNoSecret(t, "the logs", e.logs.String(), e.key, k2, expired, revoked, soon)
	})
}

// TestClientIPAllowlist: allow_ips refuses callers outside the list with
// 403 and admits those inside.
func TestClientIPAllowlist(t *testing.T) {
	lanKey, lanHash := lcNewKey(t)
	localKey, localHash := lcNewKey(t)
	e := start(t, envOpts{extra: fmt.Sprintf(`
[[clients]]
id = "lan"
key_sha256 = %q
allow_ips = ["10.0.0.0/8"]
[[clients]]
id = "local"
key_sha256 = %q
allow_ips = ["127.0.0.1/32"]
`, lanHash, localHash)})
	status, _, b := e.lcCall(lanKey, nil)
	if status != http.StatusForbidden {
		t.Fatalf("10.0.0.0/8 client from 127.0.0.1: status %d: %s", status, b)
	}
	if typ, msg := errorBody(t, b); typ != "permission_error" || !strings.Contains(msg, `"lan" may not call from this address`) {
		t.Fatalf("error %s %q", typ, msg)
	}
	// X-Forwarded-For is not believed without trusted_proxies.
	if status, _, _ := e.lcCall(lanKey, map[string]string{"X-Forwarded-For": "10.1.2.3"}); status != http.StatusForbidden {
		t.Fatalf("a forged X-Forwarded-For got past allow_ips: %d", status)
	}
	if status, _, b := e.lcCall(localKey, nil); status != 200 {
		t.Fatalf("127.0.0.1/32 client from 127.0.0.1: status %d: %s", status, b)
	}
	if e.si.RequestCount() != 1 {
		t.Fatalf("%d calls reached upstream, want only the allowed one", e.si.RequestCount())
	}
}

// TestClientCORS: a preflight from a listed origin gets the CORS headers,
// an unlisted one does not, and the real response carries
// Access-Control-Allow-Origin only for the client that lists the origin.
func TestClientCORS(t *testing.T) {
	webKey, webHash := lcNewKey(t)
	const origin = "https://app.example.com"
	e := start(t, envOpts{extra: fmt.Sprintf(`
[[clients]]
id = "web"
key_sha256 = %q
cors_origins = [%q]
`, webHash, origin)})
	preflight := func(o string) (int, http.Header) {
		status, h, _ := e.raw("OPTIONS", "/v1/messages", nil, map[string][]string{
			"Origin":                         {o},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"x-api-key, content-type, anthropic-version"},
		})
		return status, h
	}
	t.Run("listed origin preflight", func(t *testing.T) {
		status, h := preflight(origin)
		if status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("status %d, allow-origin %q", status, h.Get("Access-Control-Allow-Origin"))
		}
		for _, want := range []string{"x-api-key", "content-type", "anthropic-version"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Errorf("allow-headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("allow-methods %q", h.Get("Access-Control-Allow-Methods"))
		}
	})
	t.Run("unlisted origin preflight", func(t *testing.T) {
		status, h := preflight("https://evil.example.com")
		if status != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("status %d, allow-origin %q", status, h.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("real response", func(t *testing.T) {
		status, h, b := e.lcCall(webKey, map[string]string{"Origin": origin})
		if status != 200 || h.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("status %d, allow-origin %q: %s", status, h.Get("Access-Control-Allow-Origin"), b)
		}
		if !strings.Contains(h.Get("Access-Control-Expose-Headers"), "request-id") {
			t.Errorf("expose-headers %q", h.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("other client, same origin", func(t *testing.T) {
		status, h, _ := e.lcCall(e.key, map[string]string{"Origin": origin})
		if status != 200 || h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("client \"app\" does not list %s but got allow-origin %q (status %d)", origin, h.Get("Access-Control-Allow-Origin"), status)
		}
	})
	t.Run("unlisted origin, real request", func(t *testing.T) {
		_, h, _ := e.lcCall(webKey, map[string]string{"Origin": "https://evil.example.com"})
		if h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("allow-origin %q for an unlisted origin", h.Get("Access-Control-Allow-Origin"))
		}
	})
}
