package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// The harness runs a real moat (server.Run) on loopback against the in-repo
// Claude stand-in, like host/internal/e2e's, which test files of another
// package cannot import.

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer = logbuf.Buffer

// moat is one running gateway.
type moat struct {
	t        *testing.T
	si       *standin.Server
	public   string // http://host:port
	admin    string // http://host:port
	key      string
	adminTok string
	logs     *lockedBuffer
}

// upstreamKey is assembled at run time so no key-shaped literal is
// committed.
func upstreamKey() string {
	return "sk-" + "ant-" + "api03-" + "CONSOLETEST" + strings.Repeat("Qx7", 20) + "-AA"
}

// startMoat writes a config (extra TOML is appended after [[clients]];
// client TOML goes inside the client block) and runs moat until the test
// ends.
func startMoat(t *testing.T, client, extra string) *moat {
	t.Helper()
	dir := t.TempDir()
	m := &moat{t: t, logs: &lockedBuffer{}}
	up := upstreamKey()
	m.si = standin.New(standin.Options{APIKey: up})
	if err := m.si.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("starting stand-in: %v", err)
	}
	t.Cleanup(func() { m.si.Close() })
	keyFile := filepath.Join(dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte(up+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	m.key = key
	m.adminTok = "console-admin-" + hash[:20]
	var b strings.Builder
	fmt.Fprintf(&b, "environment = \"test\"\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n")
	fmt.Fprintf(&b, "[upstream]\nbase_url = %q\napi_key_file = %q\ntimeout = \"10s\"\n", m.si.URL(), keyFile)
	fmt.Fprintf(&b, "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"MOAT_CONSOLE_TEST_TOKEN\"\n")
	fmt.Fprintf(&b, "[audit]\npath = %q\n", filepath.Join(dir, "audit", "audit.jsonl"))
	fmt.Fprintf(&b, "[[clients]]\nid = \"app\"\nkey_sha256 = %q\n%s\n", hash, client)
	b.WriteString(extra)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewJSONHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: cfgPath,
			Stdout:     io.Discard,
			Logger:     logger,
			Ready:      func(p, a string) { ready <- [2]string{p, a} },
			Getenv: func(k string) string {
				if k == "MOAT_CONSOLE_TEST_TOKEN" {
					return m.adminTok
				}
				return os.Getenv(k)
			},
		})
	}()
	select {
	case a := <-ready:
		m.public, m.admin = "http://"+a[0], "http://"+a[1]
	case err := <-done:
		cancel()
		t.Fatalf("moat did not start: %v\nlogs:\n%s", err, m.logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("moat did not start in 30s\nlogs:\n%s", m.logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("moat exited with: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("moat did not stop in 20s")
		}
	})
	return m
}

// message sends one /v1/messages call through the gateway and returns the
// status and moat's request id.
func (m *moat) message(text string, hdr map[string]string) (int, string) {
	m.t.Helper()
	body := fmt.Sprintf(`{"model":"claude-sonnet-5-5","max_tokens":64,"messages":[{"role":"user","content":%q}]}`, text)
	req, err := http.NewRequest(http.MethodPost, m.public+"/v1/messages", strings.NewReader(body))
	if err != nil {
		m.t.Fatal(err)
	}
	req.Header.Set("x-api-key", m.key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatalf("calling moat: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("x-moat-request-id")
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

func TestConsoleOnlyOnAdminListener(t *testing.T) {
	m := startMoat(t, "", "")
	for _, p := range []string{"/console/", "/console/login", "/console/static/console.js", "/console/api/overview"} {
		t.Run("public "+p, func(t *testing.T) {
			resp, err := noRedirect.Get(m.public + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("moat console")) {
				t.Fatalf("public listener answered %d for %s: %s", resp.StatusCode, p, body)
			}
		})
	}
	t.Run("public login POST", func(t *testing.T) {
		resp, err := noRedirect.PostForm(m.public+"/console/login", url.Values{"token": {m.adminTok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther || len(resp.Cookies()) > 0 {
			t.Fatalf("public listener logged in: %d %v", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("admin", func(t *testing.T) {
		resp, err := noRedirect.Get(m.admin + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Fatalf("admin /console/: %d %q, want a redirect to the login form", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, err = noRedirect.PostForm(m.admin+"/console/login", url.Values{"token": {m.adminTok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Fatalf("admin login: %d %v", resp.StatusCode, resp.Cookies())
		}
		// The existing admin endpoints keep their bearer-token auth.
		resp, err = noRedirect.Get(m.admin + "/admin/usage")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/admin/usage without a token: %d", resp.StatusCode)
		}
	})
}
