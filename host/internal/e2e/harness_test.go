package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/internal/loopback"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// env is one running moat with its stand-in (loopback.Env) and what the
// e2e tests read from it.
type env struct {
	t        *testing.T
	lb       *loopback.Env
	si       *standin.Server
	dir      string
	url      string
	admin    string
	key      string
	upKey    string
	adminTok string
	logs     *syncBuffer
	stdout   *syncBuffer
	moat     *loopback.Moat
	cfgPath  string
	seen     *syncBuffer // every response body and header the test saw
}

// fakeUpstreamKey returns a recognisable Anthropic-shaped key, assembled at
// run time so no key-shaped literal is committed.
func fakeUpstreamKey(tag string) string { return loopback.UpstreamKey(tag) }

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
	lb := loopback.New(t, keyName, si)
	e = &env{
		t: t, lb: lb, si: lb.Standin, dir: lb.Dir,
		key: lb.ClientKey, upKey: lb.UpstreamKey, adminTok: lb.AdminToken,
		logs: &syncBuffer{}, stdout: &syncBuffer{}, seen: &syncBuffer{},
	}
	return e, lb.KeyFile, lb.ClientHash
}

// start runs moat on a fresh config in a temp dir.
func start(t *testing.T, o envOpts) *env {
	t.Helper()
	e, _, _ := newEnv(t, strings.ReplaceAll(t.Name(), "/", "_"), o.si)
	e.serve(t, e.lb.TOML(loopback.Config{
		Top: o.top, Server: o.server, Upstream: o.upstream, UpstreamURL: o.upstreamURL,
		Admin: o.admin, Audit: o.audit, Client: o.client, NoClient: o.noClient, Extra: o.extra,
	}))
	return e
}

// serve writes cfg as the env's config.toml and runs moat on it until the
// test ends; the test fails if moat does not come up within 30 s.
func (e *env) serve(t *testing.T, cfg []byte) {
	t.Helper()
	e.cfgPath = e.lb.WriteConfig(t, cfg)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.moat = loopback.Serve(t, func(ctx context.Context, ready func(string, string)) error {
		return server.Run(ctx, server.Options{
			ConfigPath: e.cfgPath,
			Stdout:     e.stdout,
			Logger:     logger,
			Ready:      ready,
			Getenv:     e.lb.Getenv,
		})
	}, e.logs, cfg)
	e.url, e.admin = "http://"+e.moat.Public, e.moat.Admin
}

// stop stops moat (a second stop returns at once).
func (e *env) stop() { e.moat.Stop() }

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
	b, err := os.ReadFile(e.lb.AuditPath())
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
