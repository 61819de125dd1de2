package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

const hiBody = `{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

// TestBetas: with allowed_betas set, an unlisted beta is refused with a 400
// naming it (the default) or relayed (unlisted_betas = "relay"); it is
// never dropped silently. Listed betas and ?beta=true reach the upstream.
func TestBetas(t *testing.T) {
	cases := []struct {
		name, server string
		betas        []string
		status       int
		wantUp       string // anthropic-beta upstream, when 200
		wantMsg      string
	}{
		{"listed only", `allowed_betas = ["good-beta-2025"]`, []string{"good-beta-2025"}, 200, "good-beta-2025", ""},
		{"unlisted refused by default", `allowed_betas = ["good-beta-2025"]`, []string{"good-beta-2025, evil-beta", "other"}, 400, "", "evil-beta"},
		{"unlisted relayed on request", "allowed_betas = [\"good-beta-2025\"]\nunlisted_betas = \"relay\"", []string{"good-beta-2025, evil-beta", "other"}, 200, "good-beta-2025,evil-beta,other", ""},
		{"no list relays all", ``, []string{"a-beta, b-beta"}, 200, "a-beta,b-beta", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, envOpts{server: tc.server})
			h := e.auth()
			h["anthropic-beta"] = tc.betas
			status, hdr, b := e.raw("POST", "/v1/messages?beta=true", []byte(hiBody), h)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if hdr.Get("request-id") == "" {
				t.Errorf("no request-id header")
			}
			if tc.status != 200 {
				if !strings.Contains(string(b), tc.wantMsg) || !strings.Contains(string(b), "invalid_request_error") {
					t.Errorf("error %s does not name %s", b, tc.wantMsg)
				}
				if n := e.si.RequestCount(); n != 0 {
					t.Errorf("the upstream was called %d times for a refused beta", n)
				}
				return
			}
			last := e.si.Last()
			if got := last.Header.Get("anthropic-beta"); got != tc.wantUp {
				t.Errorf("anthropic-beta upstream = %q, want %q", got, tc.wantUp)
			}
			if last.RawQuery != "beta=true" {
				t.Errorf("query upstream = %q, want beta=true", last.RawQuery)
			}
		})
	}
}

// TestRelayedHeaders: the client's self-description reaches the upstream;
// credentials and browser-access headers do not.
func TestRelayedHeaders(t *testing.T) {
	e := start(t, envOpts{})
	h := e.auth()
	h["User-Agent"] = []string{"claude-cli/9.9.9 (external, sdk-cli)"}
	h["X-Stainless-Lang"] = []string{"js"}
	h["X-App"] = []string{"cli"}
	h["X-Claude-Code-Session-Id"] = []string{"sess-1"}
	h["Anthropic-Dangerous-Direct-Browser-Access"] = []string{"true"}
	h["Cookie"] = []string{"a=b"}
	if status, _, b := e.raw("POST", "/v1/messages/count_tokens?beta=true", []byte(hiBody), h); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	last := e.si.Last()
	for k, want := range map[string]string{"User-Agent": "claude-cli/9.9.9 (external, sdk-cli)", "X-Stainless-Lang": "js", "X-App": "cli", "X-Claude-Code-Session-Id": "sess-1", "Anthropic-Dangerous-Direct-Browser-Access": "", "Cookie": ""} {
		if got := last.Header.Get(k); got != want {
			t.Errorf("%s upstream = %q, want %q", k, got, want)
		}
	}
	if last.APIKey() != e.upKey {
		t.Errorf("the upstream did not get moat's key")
	}
	if last.RawQuery != "beta=true" {
		t.Errorf("count_tokens query upstream = %q", last.RawQuery)
	}
}

// TestRequestIDOnEveryResponse: moat's own answers, errors included, carry
// request-id (the SDKs' RequestID) and x-moat-request-id; the id is in the
// error body too.
func TestRequestIDOnEveryResponse(t *testing.T) {
	e := start(t, envOpts{})
	cases := []struct {
		name, method, path, body string
		hdr                      map[string][]string
		status                   int
	}{
		{"no key", "POST", "/v1/messages", hiBody, map[string][]string{"content-type": {"application/json"}}, 401},
		{"bad json", "POST", "/v1/messages", `{"model":`, e.auth(), 400},
		{"no route", "GET", "/v2/nothing", "", e.auth(), 404},
		{"unknown route name", "POST", "/v1/routes/nope", `{"input":"x"}`, e.auth(), 404},
		{"healthz", "GET", "/healthz", "", nil, 200},
		{"ok", "POST", "/v1/messages", hiBody, e.auth(), 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, b := e.raw(tc.method, tc.path, []byte(tc.body), tc.hdr)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			id := h.Get("request-id")
			if id == "" || h.Get("x-moat-request-id") == "" {
				t.Fatalf("request-id %q, x-moat-request-id %q", id, h.Get("x-moat-request-id"))
			}
			if status >= 400 {
				var eb struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(b, &eb); err != nil || eb.RequestID != id {
					t.Errorf("body request_id %q, header %q (%s)", eb.RequestID, id, b)
				}
			}
		})
	}
	t.Run("SDK error has RequestID", func(t *testing.T) {
		bad := e.sdk(optionAPIKey("moat_not_a_real_key_000000000000000000000000"))
		_, err := bad.Messages.New(context.Background(), userMsg("hi"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.RequestID == "" {
			t.Fatalf("err = %v, want an *anthropic.Error with RequestID", err)
		}
	})
}

// TestUpstreamKeyRejected: when the upstream refuses moat's own key, the
// caller (whose moat key is fine) gets a 5xx api_error that blames the
// gateway, the log has an ERROR line with the key's fingerprint, a metric
// counts it and /readyz is not ready until the upstream accepts the key.
func TestUpstreamKeyRejected(t *testing.T) {
	e := start(t, envOpts{})
	e.si.SetAPIKeys("some-other-key")
	sdk := e.sdk()
	_, err := sdk.Messages.New(context.Background(), userMsg("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an *anthropic.Error", err)
	}
	if apiErr.StatusCode < 500 || apiErr.Type() != "api_error" || !strings.Contains(apiErr.Error(), "upstream credentials were rejected") {
		t.Fatalf("status %d type %s: %v, want a 5xx api_error blaming the gateway's credentials", apiErr.StatusCode, apiErr.Type(), apiErr)
	}
	if apiErr.RequestID == "" {
		t.Errorf("no RequestID on the error")
	}
	// Streaming and count_tokens are classified alike.
	for _, path := range []string{"/v1/messages/count_tokens", "/v1/models"} {
		method, body := "POST", hiBody
		if path == "/v1/models" {
			method, body = "GET", ""
		}
		status, _, b := e.raw(method, path, []byte(body), e.auth())
		if status != http.StatusBadGateway || !strings.Contains(string(b), "credentials were rejected") {
			t.Errorf("%s: %d %s", path, status, b)
		}
	}
	fp := "sha256:" // keysource.Fingerprint prefix
	logs := e.logs.String()
	found := false
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, "rejected the gateway's API key") && strings.Contains(l, fp) {
			found = true
		}
	}
	if !found {
		t.Errorf("no ERROR log line with the key fingerprint:\n%s", logs)
	}
	if strings.Contains(logs, e.upKey) {
		t.Fatalf("the upstream key is in the log")
	}
	if m := e.metrics(); !strings.Contains(m, `moat_upstream_errors_total{kind="auth_rejected"}`) {
		t.Errorf("no auth_rejected metric")
	}
	readyz := func() int {
		resp, err := http.Get(e.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := readyz(); s != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the key rejected, want 503", s)
	}
	// The key is fixed (rotated upstream): /readyz probes and recovers.
	e.si.SetAPIKeys(e.upKey)
	deadline := time.Now().Add(10 * time.Second)
	for readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still not ready after the key was accepted again")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := sdk.Messages.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestUpstreamStatusNamed: an upstream answer that is not an API error
// (a plain-text 404 from a wrong base_url) is a 502 naming the real status.
func TestUpstreamStatusNamed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	}))
	defer up.Close()
	e := start(t, envOpts{upstreamURL: up.URL})
	status, h, b := e.raw("POST", "/v1/messages", []byte(hiBody), e.auth())
	if status != http.StatusBadGateway || !strings.Contains(string(b), "status 404") || strings.Contains(string(b), "status 502") {
		t.Fatalf("%d %s, want a 502 naming the upstream's 404", status, b)
	}
	if h.Get("request-id") == "" {
		t.Errorf("no request-id")
	}
}

// TestModelsPaginationFiltered: a client restricted to some models pages
// through exactly those models, with limit, has_more, first_id/last_id,
// after_id and before_id consistent, and the SDK's auto-pager sees them all.
func TestModelsPaginationFiltered(t *testing.T) {
	allowed := []string{"claude-sonnet-5-5", "claude-opus-4-7", "claude-haiku-4-5-20251001"}
	aj, _ := json.Marshal(allowed)
	e := start(t, envOpts{client: "models = " + string(aj), si: standin.Options{}})
	type page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	get := func(q string) page {
		t.Helper()
		status, _, b := e.raw("GET", "/v1/models"+q, nil, e.auth())
		if status != 200 {
			t.Fatalf("%s: %d %s", q, status, b)
		}
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, m := range p.Data {
			out = append(out, m.ID)
		}
		return out
	}
	// Walk forward one at a time.
	var walked []string
	q := "?limit=1"
	for i := 0; i < 10; i++ {
		p := get(q)
		if len(p.Data) != 1 || *p.FirstID != p.Data[0].ID || *p.LastID != p.Data[0].ID {
			t.Fatalf("page %s: %+v", q, p)
		}
		walked = append(walked, p.Data[0].ID)
		if !p.HasMore {
			break
		}
		q = "?limit=1&after_id=" + *p.LastID
	}
	if strings.Join(walked, ",") != strings.Join(allowed, ",") {
		t.Fatalf("walked %v, want %v in the upstream's order", walked, allowed)
	}
	if p := get("?limit=2&before_id=" + allowed[2]); strings.Join(ids(p), ",") != strings.Join(allowed[:2], ",") || p.HasMore {
		t.Errorf("before_id page %+v", p)
	}
	if p := get("?limit=1&before_id=" + allowed[2]); strings.Join(ids(p), ",") != allowed[1] || !p.HasMore {
		t.Errorf("before_id limit 1 page %+v", p)
	}
	if p := get(""); len(p.Data) != 3 || p.HasMore {
		t.Errorf("default page %+v", p)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?after_id=claude-opus-5-5", "?after_id=a&before_id=b"} {
		if status, _, b := e.raw("GET", "/v1/models"+q, nil, e.auth()); status != 400 {
			t.Errorf("%s: %d %s", q, status, b)
		}
	}
	// The SDK's auto-pager, one model per page.
	var seen []string
	c := e.sdk()
	iter := c.Models.ListAutoPaging(context.Background(), anthropic.ModelListParams{Limit: anthropic.Int(1)})
	for iter.Next() {
		seen = append(seen, iter.Current().ID)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != strings.Join(allowed, ",") {
		t.Fatalf("SDK pager saw %v, want %v", seen, allowed)
	}
}
