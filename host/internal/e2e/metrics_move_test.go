package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/metrics"
)

// families groups a scraped metrics page by family: the sample lines of
// each moat_* family (a histogram's _bucket, _sum and _count included).
func families(page string) map[string][]string {
	out := map[string][]string{}
	var current string
	for _, line := range strings.Split(page, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			current = strings.Fields(name)[0]
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || !strings.HasPrefix(current, "moat_") {
			continue
		}
		out[current] = append(out[current], line)
	}
	return out
}

// TestEveryMetricMoves drives moat through a success, a slow call, an
// upstream failure, a rate limit, a failing sandboxed plugin, sampled
// unauthenticated calls, a checkpoint that cannot be saved and an audit
// record that cannot be written, and wants every registered moat_* family
// to have changed on the metrics page (build_info, a constant, is 1; the
// in-flight gauge is seen at 1 during the slow call and back at 0).
func TestEveryMetricMoves(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	limitedKey, limitedHash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	hostileKey, hostileHash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	extra := fmt.Sprintf("[[clients]]\nid = \"limited\"\nkey_sha256 = %q\nrate = \"1-M\"\n\n[[clients]]\nid = \"hostile\"\nkey_sha256 = %q\ninput = [\"hostile\"]\n\n%s",
		limitedHash, hostileHash, hostilePlugin(t, dir, "unreachable.wasm", "breaker = { failures = 1, cooldown = \"1m\" }"))
	e := start(t, envOpts{audit: `unauthenticated_rate = "1-M"`, extra: extra})
	baseline := families(e.metrics())
	as := func(key string) map[string][]string {
		h := e.auth()
		h["x-api-key"] = []string{key}
		return h
	}
	body := func(text string) []byte {
		return []byte(`{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"` + text + `"}]}`)
	}
	expect := func(what string, status, want int, b []byte) {
		t.Helper()
		if status != want {
			t.Fatalf("%s: %d %s, want %d", what, status, b, want)
		}
	}

	// A served call: requests, latencies, tokens, spend.
	status, _, b := e.raw("POST", "/v1/messages", body("hi"), e.auth())
	expect("served call", status, 200, b)

	// A slow call is in flight while it waits for the upstream.
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.url+"/v1/messages", bytes.NewReader(body("MOAT_FAULT:slow=1500ms")))
		for k, v := range e.auth() {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	seen := false
	for deadline := time.Now().Add(1400 * time.Millisecond); time.Now().Before(deadline) && !seen; time.Sleep(20 * time.Millisecond) {
		seen = metricValue(e.metrics(), "moat_requests_in_flight") == "1"
	}
	if !seen {
		t.Error("moat_requests_in_flight never showed the slow call")
	}
	if code := <-slow; code != 200 {
		t.Fatalf("slow call: %d", code)
	}
	if got := metricValue(e.metrics(), "moat_requests_in_flight"); got != "0" {
		t.Errorf("moat_requests_in_flight = %s after the slow call ended, want 0", got)
	}

	// The upstream resets the connection.
	status, _, b = e.raw("POST", "/v1/messages", body("MOAT_FAULT:reset"), e.auth())
	expect("upstream reset", status, 502, b)

	// A rate limit of one call a minute refuses the second.
	status, _, b = e.raw("POST", "/v1/messages", body("hi"), as(limitedKey))
	expect("first limited call", status, 200, b)
	status, _, b = e.raw("POST", "/v1/messages", body("hi"), as(limitedKey))
	expect("second limited call", status, 429, b)

	// A sandboxed plugin traps; with failures = 1 its breaker opens.
	status, _, b = e.raw("POST", "/v1/messages", body("hi"), as(hostileKey))
	expect("failing plugin", status, 502, b)

	// Unauthenticated calls past unauthenticated_rate are sampled out.
	for range 3 {
		status, _, b = e.raw("POST", "/v1/messages", body("hi"), map[string][]string{"content-type": {"application/json"}})
		expect("unauthenticated call", status, 401, b)
	}

	// The checkpoint follows the records.
	waitFor := func(what string, moved func(page string) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if moved(e.metrics()) {
				return
			}
		}
		t.Fatalf("%s did not move in 5s", what)
	}
	waitFor("moat_audit_checkpoint_seq", func(p string) bool { return metricValue(p, "moat_audit_checkpoint_seq") != "0" })

	// A checkpoint that cannot be saved: its file is now a directory.
	cp := filepath.Join(e.dir, ".moat-audit-checkpoint")
	if err := os.Remove(cp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cp, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	status, _, b = e.raw("POST", "/v1/messages", body("hi"), e.auth())
	expect("call with a broken checkpoint", status, 200, b)
	waitFor("moat_audit_checkpoint_failures_total", func(p string) bool {
		return metricValue(p, "moat_audit_checkpoint_failures_total") != "0"
	})

	// An audit record that cannot be written (a full disk) refuses the call.
	path := filepath.Join(e.dir, "audit", "audit.jsonl")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	status, _, b = e.raw("POST", "/v1/messages", body("hi"), e.auth())
	expect("call with a full audit disk", status, 503, b)

	final := families(e.metrics())
	names := metrics.New(metrics.Options{}).Names()
	if len(names) < 20 {
		t.Fatalf("metrics.Names() = %v", names)
	}
	for _, name := range names {
		switch name {
		case "moat_build_info":
			if len(final[name]) != 1 || !strings.HasSuffix(final[name][0], " 1") {
				t.Errorf("%s = %v, want one series at 1", name, final[name])
			}
		case "moat_requests_in_flight":
			// Seen at 1 during the slow call and at 0 after it, above.
		default:
			if len(final[name]) == 0 {
				t.Errorf("%s never appeared", name)
			} else if slices.Equal(final[name], baseline[name]) {
				t.Errorf("%s did not move: %v", name, final[name])
			}
		}
	}
	if unknown := regexp.MustCompile(`(?m)^# TYPE (moat_\w+)`).FindAllStringSubmatch(e.metrics(), -1); len(unknown) > 0 {
		for _, m := range unknown {
			if !slices.Contains(names, m[1]) {
				t.Errorf("%s is on the page but not in metrics.Names()", m[1])
			}
		}
	}
}
