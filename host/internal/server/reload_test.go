package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer = logbuf.Buffer

// TestReloadAppliesUpstream: a reload that points upstream.base_url at a
// second stand-in sends the next calls there, and one that also changes a
// restart-only setting says so in its answer and its log, and keeps the
// running value.
func TestReloadAppliesUpstream(t *testing.T) {
	first, second := standin.New(standin.Options{}), standin.New(standin.Options{})
	for _, si := range []*standin.Server{first, second} {
		if err := si.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = si.Close() })
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("3f", 32)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	writeConfig := func(baseURL, readTimeout string) {
		t.Helper()
		cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
read_timeout = %q

[upstream]
base_url = %q
api_key_env = "MOAT_TEST_UPSTREAM_KEY"

[admin]
listen = "127.0.0.1:0"

[[clients]]
id = "app"
key_sha256 = %q
`, readTimeout, baseURL, hash)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(first.URL(), "60s")
	t.Setenv("MOAT_TEST_UPSTREAM_KEY", "test-upstream-key-not-real")

	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			ConfigPath: path,
			Stdout:     io.Discard,
			Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
			Getenv:     func(k string) string { return map[string]string{"MOAT_ADMIN_TOKEN": token}[k] },
			Ready:      func(pub, admin string) { ready <- [2]string{pub, admin} },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("moat did not start")
	}
	call := func() {
		t.Helper()
		body := `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[0]+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, b)
		}
	}

	call()
	if first.RequestCount() != 1 || second.RequestCount() != 0 {
		t.Fatalf("before reload: first %d, second %d requests; want 1, 0", first.RequestCount(), second.RequestCount())
	}

	writeConfig(second.URL(), "61s")
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[1]+"/admin/reload", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res ReloadResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !res.OK {
		t.Fatalf("reload: %d %+v %v", resp.StatusCode, res, err)
	}
	if !slices.Equal(res.RestartRequired, []string{"server.read_timeout"}) {
		t.Errorf("reload answer names restart_required %q, want [server.read_timeout]", res.RestartRequired)
	}
	if !strings.Contains(logs.String(), `"restart_required":["server.read_timeout"]`) {
		t.Errorf("the log does not name the restart-only change:\n%s", logs.String())
	}

	call()
	call()
	if first.RequestCount() != 1 || second.RequestCount() != 2 {
		t.Fatalf("after reload: first %d, second %d requests; want 1, 2", first.RequestCount(), second.RequestCount())
	}
}

// TestPinRestartOnly: each restart-only setting keeps its running value
// and is named; reloadable settings in the same sections take the file's.
func TestPinRestartOnly(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *config.Config)
		want []string
	}{
		{"nothing", func(c *config.Config) {}, nil},
		{"reloadable only", func(c *config.Config) {
			c.Upstream.BaseURL = "http://127.0.0.1:1"
			c.Upstream.ConnectTimeout.Duration = time.Second
			c.Audit.FailOpen = true
			c.Audit.UnauthenticatedRate = "5-M"
			c.Server.ShutdownGrace.Duration = time.Second
		}, nil},
		{"listen", func(c *config.Config) { c.Server.Listen = "127.0.0.1:1" }, []string{"server.listen"}},
		{"audit path", func(c *config.Config) { c.Audit.Path = "/elsewhere"; c.Audit.FailOpen = true },
			[]string{"audit.path"}},
		{"key and sandbox", func(c *config.Config) {
			c.Upstream.APIKeyEnv = "OTHER"
			c.Sandbox.MaxMemoryMB = 7
		}, []string{"upstream.api_key_env", "sandbox.max_memory_mb"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			running, err := config.Parse([]byte("[upstream]\nbase_url = \"http://127.0.0.1:2\"\n"), "")
			if err != nil {
				t.Fatal(err)
			}
			next, _ := config.Parse([]byte("[upstream]\nbase_url = \"http://127.0.0.1:2\"\n"), "")
			tc.edit(next)
			edited := *next
			got := pinRestartOnly(running, next)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("restart required %q, want %q", got, tc.want)
			}
			// Restart-only values are the running ones; the rest is the file's.
			if next.Server.Listen != running.Server.Listen || next.Audit.Path != running.Audit.Path ||
				next.Upstream.APIKeyEnv != running.Upstream.APIKeyEnv || next.Sandbox != running.Sandbox {
				t.Errorf("a restart-only setting took the new value: %+v", next)
			}
			if next.Upstream.BaseURL != edited.Upstream.BaseURL || next.Audit.FailOpen != edited.Audit.FailOpen ||
				next.Audit.UnauthenticatedRate != edited.Audit.UnauthenticatedRate || next.Server.ShutdownGrace != edited.Server.ShutdownGrace {
				t.Errorf("a reloadable setting kept the running value: %+v", next)
			}
		})
	}
}
