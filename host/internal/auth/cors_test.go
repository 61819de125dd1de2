package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	_, h1 := mustKey(t)
	_, h2 := mustKey(t)
	p := CORS([]Client{
		{ID: "web", Keys: []Key{{SHA256: h1}}, CORSOrigins: []string{"https://app.example.com", "http://localhost:5173"}},
		{ID: "other", Keys: []Key{{SHA256: h2}}, CORSOrigins: []string{"https://other.example.com"}},
		{ID: "dev", CORSOrigins: []string{"http://localhost:3000"}},
	})

	t.Run("preflight", func(t *testing.T) {
		cases := []struct {
			name, method, origin, reqMethod string
			handled                         bool
			status                          int
			allow                           string
		}{
			{"listed origin", http.MethodOptions, "https://app.example.com", "POST", true, 204, "https://app.example.com"},
			{"listed origin other case", http.MethodOptions, "https://APP.example.com", "POST", true, 204, "https://APP.example.com"},
			{"local client origin", http.MethodOptions, "http://localhost:3000", "POST", true, 204, "http://localhost:3000"},
			{"unlisted origin", http.MethodOptions, "https://evil.example.com", "POST", true, 403, ""},
			{"suffix trick", http.MethodOptions, "https://app.example.com.evil.net", "POST", true, 403, ""},
			{"null origin", http.MethodOptions, "null", "POST", true, 403, ""},
			{"options without request method", http.MethodOptions, "https://app.example.com", "", false, 0, ""},
			{"post is not a preflight", http.MethodPost, "https://app.example.com", "POST", false, 0, ""},
			{"no origin", http.MethodOptions, "", "POST", false, 0, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := httptest.NewRequest(tc.method, "/v1/messages", nil)
				if tc.origin != "" {
					r.Header.Set("Origin", tc.origin)
				}
				if tc.reqMethod != "" {
					r.Header.Set("Access-Control-Request-Method", tc.reqMethod)
				}
				w := httptest.NewRecorder()
				if got := p.Preflight(w, r); got != tc.handled {
					t.Fatalf("handled = %v, want %v", got, tc.handled)
				}
				if !tc.handled {
					if len(w.Header()) != 0 {
						t.Fatalf("unhandled request got headers %v", w.Header())
					}
					return
				}
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d", w.Code, tc.status)
				}
				if got := w.Header().Get("Access-Control-Allow-Origin"); got != tc.allow {
					t.Fatalf("allow-origin %q, want %q", got, tc.allow)
				}
				if tc.allow != "" {
					for _, hdr := range []string{"x-api-key", "anthropic-version", "anthropic-dangerous-direct-browser-access", "content-type", "authorization", "anthropic-beta"} {
						if !contains(w.Header().Get("Access-Control-Allow-Headers"), hdr) {
							t.Fatalf("allow-headers lacks %s", hdr)
						}
					}
					if !contains(w.Header().Get("Access-Control-Allow-Methods"), "POST") {
						t.Fatal("allow-methods lacks POST")
					}
				} else if w.Header().Get("Access-Control-Allow-Headers") != "" {
					t.Fatal("refused preflight still lists allowed headers")
				}
			})
		}
	})

	t.Run("apply", func(t *testing.T) {
		cases := []struct {
			name, origin, client, allow string
			vary                        bool
		}{
			{"own origin", "https://app.example.com", "web", "https://app.example.com", true},
			{"origin of another client", "https://other.example.com", "web", "", true},
			{"unauthenticated", "https://app.example.com", "", "", true},
			{"unlisted", "https://evil.example.com", "web", "", true},
			{"no origin", "", "web", "", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := http.Header{}
				p.Apply(h, tc.origin, tc.client)
				if got := h.Get("Access-Control-Allow-Origin"); got != tc.allow {
					t.Fatalf("allow-origin %q, want %q", got, tc.allow)
				}
				if (h.Get("Vary") == "Origin") != tc.vary {
					t.Fatalf("vary = %q", h.Get("Vary"))
				}
			})
		}
	})

	t.Run("zero value allows nothing", func(t *testing.T) {
		var z CORSPolicy
		h := http.Header{}
		z.Apply(h, "https://app.example.com", "web")
		if h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("zero policy allowed an origin")
		}
	})
}

func contains(list, item string) bool {
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == item {
			return true
		}
	}
	return false
}
