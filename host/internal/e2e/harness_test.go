package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// env is one running moat with its stand-in.
type env struct {
	t        *testing.T
	si       *standin.Server
	dir      string
	url      string
	admin    string
	key      string
	upKey    string
	adminTok string
	logs     *syncBuffer
	stdout   *syncBuffer
	cancel   context.CancelFunc
	done     chan error
	cfgPath  string
	seen     *syncBuffer // every response body and header the test saw
}

// fakeUpstreamKey returns a recognisable Anthropic-shaped key, assembled at
// run time so no key-shaped literal is committed.
func fakeUpstreamKey(tag string) string {
	return "sk-" + "ant-" + "api03-" + "MOATCANARY" + tag + strings.Repeat("Zq9", 20) + "-AA"
}

type envOpts struct {
	// extra is TOML appended to the base config (after [[clients]]).
	extra string
	// client is TOML added inside the main [[clients]] block.
	client string
	// noClient leaves [[clients]] out (first-start key generation).
	noClient bool
	// server is TOML added inside [server].
	server string
	// top is TOML placed before any table.
	top string
	// upstream is TOML added inside [upstream].
	upstream string
	// audit is TOML added inside [audit].
	audit string
	// admin is TOML added inside [admin].
	admin string
	// upstreamURL, when set, replaces the stand-in as moat's upstream.
	upstreamURL string
	si          standin.Options
}

// newEnv makes an env in a temp dir with a running stand-in that accepts
// only a fake upstream key (written to keyFile) and a new client key
// (hash is its SHA-256); moat is not started yet (see serve).
func newEnv(t *testing.T, keyName string, si standin.Options) (e *env, keyFile, hash string) {
	t.Helper()
	e = &env{t: t, dir: t.TempDir(), logs: &syncBuffer{}, stdout: &syncBuffer{}, seen: &syncBuffer{}, done: make(chan error, 1)}
	e.upKey = fakeUpstreamKey(keyName)
	si.APIKey = e.upKey
	e.si = standin.New(si)
	if err := e.si.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("starting stand-in: %v", err)
	}
	t.Cleanup(func() { e.si.Close() })
	keyFile = filepath.Join(e.dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte(e.upKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e.key = key
	e.adminTok = "admin-token-" + hash[:16]
	return e, keyFile, hash
}

// start runs moat on a fresh config in a temp dir.
func start(t *testing.T, o envOpts) *env {
	t.Helper()
	e, keyFile, hash := newEnv(t, strings.ReplaceAll(t.Name(), "/", "_"), o.si)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nenvironment = \"test\"\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n%s\n", o.top, o.server)
	upURL := e.si.URL()
	if o.upstreamURL != "" {
		upURL = o.upstreamURL
	}
	fmt.Fprintf(&b, "[upstream]\nbase_url = %q\napi_key_file = %q\ntimeout = \"10s\"\n%s\n", upURL, keyFile, o.upstream)
	fmt.Fprintf(&b, "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"MOAT_E2E_ADMIN_TOKEN\"\n%s\n", o.admin)
	fmt.Fprintf(&b, "[audit]\npath = %q\n%s\n", filepath.Join(e.dir, "audit", "audit.jsonl"), o.audit)
	if !o.noClient {
		fmt.Fprintf(&b, "[[clients]]\nid = \"app\"\nkey_sha256 = %q\n%s\n", hash, o.client)
	}
	b.WriteString(o.extra)
	e.serve(t, []byte(b.String()))
	return e
}

// serve writes cfg as the env's config.toml and runs moat on it until the
// test ends; the test fails if moat does not come up within 30 s.
func (e *env) serve(t *testing.T, cfg []byte) {
	t.Helper()
	e.cfgPath = filepath.Join(e.dir, "config.toml")
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		e.done <- server.Run(ctx, server.Options{
			ConfigPath: e.cfgPath,
			Stdout:     e.stdout,
			Logger:     logger,
			Ready:      func(p, a string) { ready <- [2]string{p, a} },
			Getenv: func(k string) string {
				if k == "MOAT_E2E_ADMIN_TOKEN" {
					return e.adminTok
				}
				return os.Getenv(k)
			},
		})
	}()
	select {
	case addrs := <-ready:
		e.url, e.admin = "http://"+addrs[0], addrs[1]
	case err := <-e.done:
		cancel()
		t.Fatalf("moat did not start: %v\nlogs:\n%s\nconfig:\n%s", err, e.logs.String(), cfg)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("moat did not start in 30s\nlogs:\n%s", e.logs.String())
	}
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	// The SDK and e.raw use http.DefaultTransport, which may hold a
	// connection it dialed but never sent a request on; net/http's
	// Shutdown waits 5 s for such a connection before it counts as idle,
	// as long as the harness's shutdown_grace. Close them first.
	http.DefaultClient.CloseIdleConnections()
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("moat exited with: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Errorf("moat did not stop in 20s")
	}
	e.done <- nil // let a second stop return at once
}

// sdk returns the official client pointed at moat with the client key.
func (e *env) sdk(opts ...option.RequestOption) anthropic.Client {
	base := []option.RequestOption{
		option.WithBaseURL(e.url),
		option.WithAPIKey(e.key),
		option.WithMaxRetries(0),
		option.WithMiddleware(e.capture),
	}
	return anthropic.NewClient(append(base, opts...)...)
}

// capture keeps every response header and body for the key-leak checks.
func (e *env) capture(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if err != nil || resp == nil {
		return resp, err
	}
	var hb strings.Builder
	_ = resp.Header.Write(&hb)
	e.seen.Write([]byte(hb.String()))
	resp.Body = &teeBody{rc: resp.Body, w: e.seen}
	return resp, nil
}

type teeBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	w *syncBuffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 {
		t.w.Write(p[:n])
	}
	return n, err
}
func (t *teeBody) Close() error { return t.rc.Close() }

// raw sends a request to moat without the SDK and returns status, headers
// and body.
func (e *env) raw(method, path string, body []byte, hdr map[string][]string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	var hb strings.Builder
	_ = resp.Header.Write(&hb)
	e.seen.Write([]byte(hb.String()))
	e.seen.Write(out.Bytes())
	return resp.StatusCode, resp.Header, out.Bytes()
}

// auth returns the headers of an authenticated JSON request.
func (e *env) auth() map[string][]string {
	return map[string][]string{
		"x-api-key":         {e.key},
		"anthropic-version": {"2023-06-01"},
		"content-type":      {"application/json"},
	}
}

// auditLines reads the audit file.
func (e *env) auditLines() []string {
	b, err := os.ReadFile(filepath.Join(e.dir, "audit", "audit.jsonl"))
	if err != nil {
		e.t.Fatalf("reading audit: %v", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// metrics scrapes the admin listener.
func (e *env) metrics() string {
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		e.t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

const model = "claude-sonnet-5-5"

func optionAPIKey(k string) option.RequestOption { return option.WithAPIKey(k) }
