package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricValue returns the value of an unlabelled metric on a scraped page.
func metricValue(page, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		return "absent"
	}
	return m[1]
}

// TestAuditFailClosed: when the audit record cannot be written (the file
// is swapped for /dev/full: every write fails with ENOSPC, also for root),
// requests are refused with 503; with fail_open they are served.
func TestAuditFailClosed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	body := []byte(`{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	for _, tc := range []struct {
		name     string
		audit    string
		want     int
		wantType string
	}{
		{"fail closed (default)", "", 503, "api_error"},
		{"fail open", "fail_open = true", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, envOpts{audit: tc.audit})
			if status, _, b := e.raw("POST", "/v1/messages", body, e.auth()); status != 200 {
				t.Fatalf("before: %d %s", status, b)
			}
			if got := metricValue(e.metrics(), "moat_audit_write_failures_total"); got != "0" {
				t.Fatalf("moat_audit_write_failures_total = %q before any failure", got)
			}
			path := filepath.Join(e.dir, "audit", "audit.jsonl")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/dev/full", path); err != nil {
				t.Fatal(err)
			}
			before := e.si.RequestCount()
			status, _, b := e.raw("POST", "/v1/messages", body, e.auth())
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, b)
			}
			// The failed record is counted on the metrics page.
			if got := metricValue(e.metrics(), "moat_audit_write_failures_total"); got != "1" {
				t.Fatalf("moat_audit_write_failures_total = %q after one failed record, want 1", got)
			}
			if tc.wantType != "" {
				typ, msg := errorBody(t, b)
				if typ != tc.wantType || !strings.Contains(msg, "audit") {
					t.Fatalf("error %s: %s", typ, msg)
				}
				// A stream is refused before the upstream is called.
				sb := []byte(strings.Replace(string(body), `"max_tokens":10`, `"max_tokens":10,"stream":true`, 1))
				if status, _, b := e.raw("POST", "/v1/messages", sb, e.auth()); status != 503 {
					t.Fatalf("stream: %d %s", status, b)
				}
				if n := e.si.RequestCount() - before; n != 1 {
					t.Errorf("upstream calls after the audit broke = %d, want 1 (the stream must not reach it)", n)
				}
				status, _, _ := e.raw("GET", "/readyz", nil, nil)
				if status != 503 {
					t.Errorf("/readyz = %d with a broken audit log", status)
				}
			}
		})
	}
}
