package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// hostilePlugin copies a hand-written module of host/internal/wasm's
// testdata into dir and returns its [[plugins]] block.
func hostilePlugin(t *testing.T, dir, file, extra string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "wasm", "testdata", "hostile", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("[[plugins]]\nname = \"hostile\"\npath = %q\nsha256 = %q\ntimeout_ms = 200\nmemory_mb = 16\n%s\n",
		filepath.Join(dir, file), hex.EncodeToString(sum[:]), extra)
}

// TestPluginFailureCauses: each failure's cause reaches a WARN log line
// (with the request id and duration), the audit record and the
// moat_plugin_errors_total metric, while the client gets only the generic
// message; a plugin failing repeatedly is quarantined and that shows in
// the breaker metrics.
func TestPluginFailureCauses(t *testing.T) {
	body := []byte(`{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	for _, tc := range []struct {
		file   string
		causes []pluginerr.Cause // of successive requests
		extra  string
	}{
		{"loop.wasm", []pluginerr.Cause{pluginerr.Timeout, pluginerr.Timeout, pluginerr.Quarantined}, "breaker = { failures = 2, cooldown = \"1m\" }"},
		{"recursion.wasm", []pluginerr.Cause{pluginerr.TrapStackOverflow}, ""},
		{"memory-grow.wasm", []pluginerr.Cause{pluginerr.TrapMemoryLimit}, ""},
		{"unreachable.wasm", []pluginerr.Cause{pluginerr.TrapUnreachable}, ""},
		{"bad-json.wasm", []pluginerr.Cause{pluginerr.BadVerdictJSON}, ""},
		{"unknown-action.wasm", []pluginerr.Cause{pluginerr.UnknownAction}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			e := start(t, envOpts{extra: "[pipeline]\ninput = [\"hostile\"]\n" + hostilePlugin(t, dir, tc.file, tc.extra)})
			counts := map[pluginerr.Cause]int{}
			for i, want := range tc.causes {
				status, hdr, b := e.raw("POST", "/v1/messages", body, e.auth())
				if status != 502 || !strings.Contains(string(b), `plugin \"hostile\" failed; the request was refused`) {
					t.Fatalf("request %d: %d %s, want the generic 502", i, status, b)
				}
				for _, c := range pluginerr.Causes {
					if strings.Contains(string(b), string(c)) {
						t.Errorf("request %d: the client saw the cause %q: %s", i, c, b)
					}
				}
				counts[want]++
				reqID := hdr.Get("request-id")
				// The audit record of this request names the cause.
				lines := e.auditLines()
				var rec struct {
					RequestID string `json:"request_id"`
					Plugins   []struct {
						Name, Action, Cause string
					} `json:"plugins"`
				}
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
					t.Fatal(err)
				}
				if len(rec.Plugins) != 1 || rec.Plugins[0].Cause != string(want) || rec.Plugins[0].Action != "error" {
					t.Errorf("request %d: audit plugins %+v, want cause %q", i, rec.Plugins, want)
				}
				// So does a WARN line with the request id and a duration.
				found := false
				for _, l := range strings.Split(e.logs.String(), "\n") {
					var m map[string]any
					if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "plugin failed" {
						continue
					}
					if m["level"] == "WARN" && m["plugin"] == "hostile" && m["cause"] == string(want) && m["request_id"] == rec.RequestID && m["duration"] != nil {
						found = true
					}
				}
				if !found || (reqID != "" && reqID != rec.RequestID) {
					t.Errorf("request %d: no WARN \"plugin failed\" line with cause %q and request id %q\n%s", i, want, rec.RequestID, e.logs.String())
				}
			}
			metrics := e.metrics()
			for c, n := range counts {
				line := fmt.Sprintf(`moat_plugin_errors_total{cause=%q,phase="input",plugin="hostile"} %d`, c, n)
				if !strings.Contains(metrics, line) {
					t.Errorf("metrics lack %s", line)
				}
			}
			if counts[pluginerr.Quarantined] > 0 {
				for _, line := range []string{
					`moat_plugin_breaker_state{plugin="hostile",state="open"} 1`,
					`moat_plugin_breaker_transitions_total{plugin="hostile",state="open"} 1`,
				} {
					if !strings.Contains(metrics, line) {
						t.Errorf("metrics lack %s", line)
					}
				}
				if !strings.Contains(e.logs.String(), `"msg":"plugin quarantined"`) {
					t.Errorf("no log line for the quarantine")
				}
			}
		})
	}
}
