package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/internal/loopback"
	"github.com/moat-gateway/moat/host/internal/metrics"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/upstream"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// testGateway is a gateway on real components (config, state, limiter,
// audit trail, metrics) in a temporary directory, in front of a stand-in.
type testGateway struct {
	t       *testing.T
	g       *Gateway
	si      *standin.Server
	metrics *metrics.Metrics
	logs    *syncBuffer
	dir     string
	key     string
}

// newTestGateway starts a gateway whose config is one client "app" (with
// clientTOML inside its block) followed by extra.
func newTestGateway(t *testing.T, clientTOML, extra string) *testGateway {
	t.Helper()
	lb := loopback.New(t, "gateway", standin.Options{})
	si, key, hash, dir := lb.Standin, lb.ClientKey, lb.ClientHash, lb.Dir
	path := filepath.Join(dir, "config.toml")
	toml := "[upstream]\nbase_url = \"" + si.URL() + "\"\n\n[[clients]]\nid = \"app\"\nkey_sha256 = \"" + hash + "\"\n" + clientTOML + "\n" + extra
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := BuildState(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Upstream = upstream.New(plan.Upstream(cfg), func() string { return lb.UpstreamKey })
	tg := &testGateway{t: t, si: si, metrics: metrics.New(metrics.Options{}), logs: &syncBuffer{}, dir: dir, key: key}
	logger := slog.New(slog.NewJSONHandler(tg.logs, nil))
	lcfg, err := plan.Limits(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limit.New(ctx, lcfg, limit.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lim.Close() })
	al, err := audit.Open(plan.Audit(cfg.Audit), audit.Options{Logger: logger, Observer: tg.metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = al.Close() })
	tg.g = New(Deps{Limiter: lim, Audit: al, Metrics: tg.metrics, Logger: logger}, st)
	t.Cleanup(func() { st.Close(ctx) })
	return tg
}

// do sends a request with the client's key and returns the status, the
// request id the client saw and the body.
func (tg *testGateway) do(method, path, body string) (int, string, string) {
	tg.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("x-api-key", tg.key)
	r.Header.Set("anthropic-version", "2023-06-01")
	r.Header.Set("content-type", "application/json")
	w := httptest.NewRecorder()
	tg.g.Handler().ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Header().Get(hdrRequestID), string(b)
}

// auditRecord returns the audit record of a request id.
func (tg *testGateway) auditRecord(id string) map[string]any {
	tg.t.Helper()
	b, err := os.ReadFile(filepath.Join(tg.dir, "audit.jsonl"))
	if err != nil {
		tg.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["request_id"] == id {
			return m
		}
	}
	tg.t.Fatalf("no audit record for %s in:\n%s", id, b)
	return nil
}

// logLines returns the log lines with message msg about request id.
func (tg *testGateway) logLines(msg, id string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(tg.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg && m["request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}
