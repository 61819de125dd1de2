package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/internal/loopback"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// The harness runs a real moat (server.Run) on loopback against the in-repo
// Claude stand-in, with the shared harness (host/internal/loopback).

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

// startMoat writes a config (extra TOML is appended after [[clients]];
// client TOML goes inside the client block) and runs moat until the test
// ends.
func startMoat(t *testing.T, client, extra string) *moat {
	t.Helper()
	lb := loopback.New(t, "CONSOLETEST", standin.Options{})
	m := &moat{t: t, si: lb.Standin, key: lb.ClientKey, adminTok: lb.AdminToken, logs: &lockedBuffer{}}
	cfg := lb.TOML(loopback.Config{Client: client, Extra: extra})
	cfgPath := lb.WriteConfig(t, cfg)
	logger := slog.New(slog.NewJSONHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	run := loopback.Serve(t, func(ctx context.Context, ready func(string, string)) error {
		return server.Run(ctx, server.Options{
			ConfigPath: cfgPath,
			Stdout:     io.Discard,
			Logger:     logger,
			Ready:      ready,
			Getenv:     lb.Getenv,
		})
	}, m.logs, cfg)
	m.public, m.admin = "http://"+run.Public, "http://"+run.Admin
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
