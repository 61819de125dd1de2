package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
)

// lcWriteAtomic replaces path with content the way an editor or a secret
// manager does: a temp file in the same directory renamed over it.
func lcWriteAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// lcConfig returns the running config file's text.
func (e *env) lcConfig() string {
	e.t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// lcReload asks moat to reload through the admin listener and returns the
// status and the decoded ReloadResult.
func (e *env) lcReload() (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.admin+"/admin/reload", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST /admin/reload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		e.t.Fatalf("reload answer is not JSON: %v: %s", err, b)
	}
	return resp.StatusCode, res
}

// lcMustReload reloads and fails the test unless the reload succeeded.
func (e *env) lcMustReload() {
	e.t.Helper()
	status, res := e.lcReload()
	if status != http.StatusOK || res["ok"] != true {
		e.t.Fatalf("reload: status %d %v\nlogs:\n%s", status, res, e.logs.String())
	}
}

// lcBody is a small non-streaming Messages request.
func lcBody(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": model, "max_tokens": 64,
		"messages": []any{map[string]any{"role": "user", "content": text}},
	})
	return b
}

// lcCall sends a Messages request with key (x-api-key) and extra headers.
func (e *env) lcCall(key string, extra map[string]string) (int, http.Header, []byte) {
	e.t.Helper()
	h := map[string][]string{"anthropic-version": {"2023-06-01"}, "content-type": {"application/json"}}
	if key != "" {
		h["x-api-key"] = []string{key}
	}
	for k, v := range extra {
		h[k] = []string{v}
	}
	return e.raw("POST", "/v1/messages", lcBody("hello"), h)
}

// lcNewKey returns a fresh moat client key and its hash.
func lcNewKey(t *testing.T) (string, string) {
	t.Helper()
	k, h, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, h
}

// lcAuditWith returns the decoded audit records for which match is true.
func (e *env) lcAuditWith(match func(map[string]any) bool) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, l := range e.auditLines() {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			e.t.Fatalf("audit line is not JSON: %v: %s", err, l)
		}
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// lcEventually polls cond every 10ms until it holds or d passes.
func lcEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lcNoSecret fails when s holds any of the secrets.
func lcNoSecret(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, k := range secrets {
		if k != "" && strings.Contains(s, k) {
			t.Errorf("a secret appears in %s", where)
		}
	}
}
