package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape fetches the handler over a real socket.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSeries(t *testing.T) {
	m := New(Options{Environment: "staging", Version: "v1.2.3", Models: []string{"claude-x"}})
	done := m.Start()
	m.Start()
	done()
	done() // idempotent
	m.Request("/v1/messages", "summarize", "app", 200, 1500*time.Millisecond, 3*time.Millisecond)
	m.Request("/v1/messages", "", "app", 429, time.Millisecond, time.Millisecond)
	m.Usage("app", "claude-x", 100, 20, 5, 0, 0.0125)
	m.PluginCall("pii", "input", "modify", 2*time.Millisecond)
	m.LimitRefusal("app", "rate_limit")
	m.LimitRefusal("app", "budget")
	m.UpstreamError("timeout")
	m.AuditWriteFailure()
	out := scrape(t, m)
	for _, want := range []string{
		`moat_requests_total{client="app",endpoint="/v1/messages",route="summarize",status="200"} 1`,
		`moat_requests_total{client="app",endpoint="/v1/messages",route="none",status="429"} 1`,
		`moat_request_duration_seconds_bucket{endpoint="/v1/messages",le="2.5"} 2`,
		`moat_request_duration_seconds_count{endpoint="/v1/messages"} 2`,
		`moat_gateway_duration_seconds_bucket{endpoint="/v1/messages",le="0.005"} 2`,
		`moat_plugin_calls_total{phase="input",plugin="pii",verdict="modify"} 1`,
		`moat_plugin_duration_seconds_count{phase="input",plugin="pii"} 1`,
		`moat_limit_refusals_total{client="app",kind="rate_limit"} 1`,
		`moat_limit_refusals_total{client="app",kind="budget"} 1`,
		`moat_spend_usd_total{client="app",model="claude-x"} 0.0125`,
		`moat_tokens_total{client="app",kind="input",model="claude-x"} 100`,
		`moat_tokens_total{client="app",kind="output",model="claude-x"} 20`,
		`moat_tokens_total{client="app",kind="cache_read",model="claude-x"} 5`,
		`moat_upstream_errors_total{kind="timeout"} 1`,
		`moat_requests_in_flight 1`,
		`moat_audit_write_failures_total 1`,
		`environment="staging"`,
		`moat_build_info{environment="staging",go_version="go`,
		`version="v1.2.3"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(out, `kind="cache_write"`) {
		t.Error("zero token count created a series")
	}
}

func TestSeparateRegistries(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.UpstreamError("connect")
	if strings.Contains(scrape(t, b), `moat_upstream_errors_total{kind="connect"}`) {
		t.Fatal("registries share state")
	}
	if !strings.Contains(scrape(t, a), `moat_upstream_errors_total{kind="connect"} 1`) {
		t.Fatal("series missing")
	}
}

func TestCardinalityBounded(t *testing.T) {
	m := New(Options{MaxValues: 5, Clients: []string{"app", "web"}})
	for i := 0; i < 50; i++ {
		m.Request(fmt.Sprintf("/path/%d", i), fmt.Sprintf("route-%d", i), fmt.Sprintf("client-%d", i), 200, time.Millisecond, time.Millisecond)
		m.Usage("app", fmt.Sprintf("model-%d", i), 1, 1, 0, 0, 0.1)
	}
	m.Request("/v1/messages", "r", "web", 999, 0, 0)
	out := scrape(t, m)
	count := func(label string) int {
		seen := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if i := strings.Index(line, label+`="`); i >= 0 && strings.HasPrefix(line, "moat_") {
				v := line[i+len(label)+2:]
				seen[v[:strings.IndexByte(v, '"')]] = true
			}
		}
		return len(seen)
	}
	for _, label := range []string{"endpoint", "route", "model"} {
		if n := count(label); n > 5+1 { // 5 values + "other"
			t.Errorf("%s has %d distinct values, cap 5", label, n)
		}
	}
	if n := count("client"); n != 3 { // app, web, other
		t.Errorf("client has %d values, want app, web and other", n)
	}
	for _, want := range []string{`endpoint="other"`, `route="other"`, `model="other"`, `client="other"`, `status="other"`} {
		if !strings.Contains(out, want) {
			t.Errorf("overflow not mapped: %s missing", want)
		}
	}
}

func TestNoKeyOrContentInLabels(t *testing.T) {
	key := "sk-ant-api03-" + strings.Repeat("K", 40)
	clientKey := "moat_live_" + strings.Repeat("c", 32)
	m := New(Options{})
	for _, v := range []string{key, clientKey, "Bearer " + strings.Repeat("t", 30), "line\nbreak", "\xff\xfe", strings.Repeat("x", 500)} {
		m.Request(v, v, v, 200, 0, 0)
		m.Usage(v, v, 1, 1, 1, 1, 1)
		m.PluginCall(v, v, v, 0)
		m.LimitRefusal(v, v)
		m.UpstreamError(v)
	}
	out := scrape(t, m)
	for _, leak := range []string{"sk-ant-", "KKKKKKKK", "moat_live", "cccccccc", "Bearer", "tttttttt", "xxxxxxxxxx", "line"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q reached the metrics output", leak)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Request("a", "b", "c", 200, 0, 0)
	m.Usage("a", "b", 1, 1, 1, 1, 1)
	m.PluginCall("a", "input", "allow", 0)
	m.LimitRefusal("a", "budget")
	m.UpstreamError("x")
	m.AuditWriteFailure()
	m.Start()()
	if m.Registry() != nil {
		t.Fatal("nil registry expected")
	}
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != http.StatusNotFound {
		t.Fatalf("nil handler status %d", rr.Code)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := New(Options{MaxValues: 10})
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				done := m.Start()
				m.Request("/v1/messages", fmt.Sprint("r", i%20), "app", 200+i%3, time.Millisecond, time.Microsecond)
				m.Usage("app", fmt.Sprint("m", g%15), 1, 1, 0, 0, 0.001)
				done()
			}
		}()
	}
	wg.Wait()
	out := scrape(t, m)
	if !strings.Contains(out, "moat_requests_in_flight 0") {
		t.Fatal("in-flight gauge not back to 0")
	}
	var total float64
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "moat_requests_total{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	if total != 5000 {
		t.Fatalf("requests_total sums to %v, want 5000", total)
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New(Options{Clients: []string{"app"}})
	for b.Loop() {
		m.Request("/v1/messages", "summarize", "app", 200, time.Millisecond, time.Microsecond)
	}
}

// TestNames: Names lists moat's own families, each on the page once it has
// a sample, and none of the Go or process collectors'.
func TestNames(t *testing.T) {
	m := New(Options{})
	names := m.Names()
	if len(names) != 20 || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v, want 20 sorted names", names)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "moat_") {
			t.Errorf("%s is not moat's", n)
		}
	}
	for _, want := range []string{"moat_requests_in_flight", "moat_audit_write_failures_total", "moat_build_info"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
}
