package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
)

// TestHostGuard: the admin listener answers only to the hosts it is
// configured for (DNS rebinding), and refuses cross-origin state changes.
func TestHostGuard(t *testing.T) {
	type req struct {
		method, host string
		hdr          map[string]string
		want         int
	}
	cases := []struct {
		name  string
		admin config.Admin
		reqs  []req
	}{
		{"loopback listener", config.Admin{Listen: "127.0.0.1:9090"}, []req{
			{"GET", "127.0.0.1:9090", nil, 200},
			{"GET", "localhost:9090", nil, 200},
			{"GET", "LOCALHOST.", nil, 200},
			{"GET", "[::1]:9090", nil, 200},
			{"GET", "evil.example", nil, 421},
			{"GET", "evil.example:9090", nil, 421},
			{"GET", "127.0.0.1.evil.example", nil, 421},
			{"GET", "localhost.evil.example:9090", nil, 421},
			{"GET", "10.0.0.5:9090", nil, 421},
			{"POST", "127.0.0.1:9090", nil, 200},
			{"POST", "127.0.0.1:9090", map[string]string{"Origin": "http://127.0.0.1:9090"}, 200},
			{"POST", "localhost:9090", map[string]string{"Origin": "https://localhost:9090"}, 200},
			{"POST", "127.0.0.1:9090", map[string]string{"Origin": "http://evil.example"}, 403},
			{"POST", "127.0.0.1:9090", map[string]string{"Origin": "http://127.0.0.1:8080"}, 403},
			{"POST", "127.0.0.1:9090", map[string]string{"Origin": "null"}, 403},
			{"POST", "127.0.0.1:9090", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"POST", "127.0.0.1:9090", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
			{"POST", "127.0.0.1:9090", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
			{"DELETE", "127.0.0.1:9090", map[string]string{"Origin": "http://evil.example"}, 403},
			{"GET", "127.0.0.1:9090", map[string]string{"Origin": "http://evil.example"}, 200},
		}},
		{"all interfaces", config.Admin{Listen: ":9090", AllowedHosts: []string{"Moat-Admin.Internal"}}, []req{
			{"GET", "10.0.0.5:9090", nil, 200},
			{"GET", "[2001:db8::5]:9090", nil, 200},
			{"GET", "moat-admin.internal:9090", nil, 200},
			{"GET", "evil.example", nil, 421},
			{"POST", "moat-admin.internal:9090", map[string]string{"Origin": "https://moat-admin.internal:9090"}, 200},
		}},
		{"named interface", config.Admin{Listen: "10.0.0.5:9090"}, []req{
			{"GET", "10.0.0.5:9090", nil, 200},
			{"GET", "10.0.0.6:9090", nil, 421},
			{"GET", "127.0.0.1:9090", nil, 200},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
			srv := httptest.NewServer(newHostGuard(tc.admin, ok))
			defer srv.Close()
			for _, rq := range tc.reqs {
				r, err := http.NewRequest(rq.method, srv.URL+"/admin/x", nil)
				if err != nil {
					t.Fatal(err)
				}
				r.Host = rq.host
				for k, v := range rq.hdr {
					r.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != rq.want {
					t.Errorf("%s Host %q %v: %d %s, want %d", rq.method, rq.host, rq.hdr, resp.StatusCode, b, rq.want)
				}
				if rq.want != 200 && !strings.Contains(string(b), `"type":"error"`) {
					t.Errorf("refusal not in Anthropic's error shape: %s", b)
				}
			}
		})
	}
}

// TestAdminTokenThrottle: 40 wrong admin tokens racing from one address
// get exactly MaxLoginFailures 401s and 429s after; the address is then
// refused even with the right token until the minute ends.
func TestAdminTokenThrottle(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 5, 1, 12, 0, 5, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	token := strings.Repeat("3f", 32)
	check := adminTokenCheck(token, "MOAT_ADMIN_TOKEN", newAdminThrottle(), now)
	srv := httptest.NewServer(check(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })))
	defer srv.Close()
	call := func(tok string) (int, string) {
		r, _ := http.NewRequest("GET", srv.URL+"/admin/usage", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("retry-after") + " " + string(b)
	}
	if st, body := call(token); st != 200 {
		t.Fatalf("right token: %d %s", st, body)
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			st, _ := call(token[:60] + "x" + string(rune('a'+i%26)))
			mu.Lock()
			codes[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[401] != 10 || codes[429] != 30 {
		t.Fatalf("wrong tokens got %v, want 10 401s and 30 429s", codes)
	}
	if st, body := call(token); st != 429 || !strings.Contains(body, "rate_limit_error") || strings.HasPrefix(body, " ") {
		t.Fatalf("right token from a throttled address: %d %q, want 429 with retry-after", st, body)
	}
	clock.Add(int64(time.Minute))
	if st, body := call(token); st != 200 {
		t.Fatalf("right token the next minute: %d %s", st, body)
	}
}
