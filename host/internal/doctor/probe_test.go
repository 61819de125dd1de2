package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestProbe asks a real stand-in of the API, which accepts one key, with
// the right key, a revoked one, and an upstream that is down or broken.
func TestProbe(t *testing.T) {
	good := fakeAnthropicKey
	si := standin.New(standin.Options{APIKey: good})
	if err := si.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { si.Close() })
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	revoked := "sk-" + "ant-" + "api03-" + strings.Repeat("REVOKEDfake1", 6)
	tests := []struct {
		name, url, key, status, detail string
	}{
		{"accepted", si.URL(), good, Pass, "accepts key"},
		{"rejected", si.URL(), revoked, Fail, "rejected key"},
		{"upstream error", broken.URL, good, Warn, "status 503"},
		{"unreachable", downURL, good, Warn, "could not reach"},
		{"no key", si.URL(), "", Fail, "no upstream key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{}
			cfg.Upstream.BaseURL = tc.url
			cfg.Upstream.APIKeyEnv = "PROBE_TEST_KEY"
			env := func(k string) string {
				if k == "PROBE_TEST_KEY" {
					return tc.key
				}
				return ""
			}
			r := Probe(context.Background(), cfg, env, nil)
			if r.Name != ProbeName || r.Status != tc.status || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("got %s %q, want %s with %q", r.Status, r.Detail, tc.status, tc.detail)
			}
			if tc.key != "" && strings.Contains(r.Detail+r.Fix, tc.key) {
				t.Fatal("the probe printed the key")
			}
		})
	}
}
