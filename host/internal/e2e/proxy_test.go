package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

func userMsg(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     model,
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func TestMessagesThroughSDK(t *testing.T) {
	e := start(t, envOpts{})
	reply := "Bonjour! 你好 🌍 — the answer is 42."
	e.si.SetReply(reply)
	client := e.sdk()
	ctx := context.Background()

	t.Run("non-streaming", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, userMsg("hello"))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != reply {
			t.Fatalf("content = %+v, want %q", msg.Content, reply)
		}
		if msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 {
			t.Errorf("usage not relayed: %+v", msg.Usage)
		}
		got := e.si.Last()
		if got.Header.Get("x-api-key") != e.upKey {
			t.Errorf("upstream did not receive moat's key")
		}
		for _, h := range []string{"Authorization"} {
			if got.Header.Get(h) != "" {
				t.Errorf("client header %s forwarded upstream", h)
			}
		}
		if strings.Contains(strings.Join(got.Header.Values("x-api-key"), ","), e.key) {
			t.Errorf("client key forwarded upstream")
		}
	})

	t.Run("streaming", func(t *testing.T) {
		stream := client.Messages.NewStreaming(ctx, userMsg("hello stream"))
		var acc anthropic.Message
		events := 0
		for stream.Next() {
			events++
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatalf("accumulate: %v", err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if len(acc.Content) != 1 || acc.Content[0].Text != reply {
			t.Fatalf("streamed content = %+v, want %q", acc.Content, reply)
		}
		if events < 6 {
			t.Errorf("only %d events relayed", events)
		}
		if acc.StopReason != "end_turn" || acc.Usage.OutputTokens == 0 {
			t.Errorf("stop/usage lost: %q %+v", acc.StopReason, acc.Usage)
		}
	})

	t.Run("count_tokens", func(t *testing.T) {
		res, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    model,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count these words please"))},
		})
		if err != nil {
			t.Fatalf("CountTokens: %v", err)
		}
		if res.InputTokens <= 0 {
			t.Fatalf("input tokens = %d", res.InputTokens)
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx, anthropic.ModelListParams{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(page.Data) == 0 {
			t.Fatal("no models listed")
		}
	})

	t.Run("request id and upstream headers", func(t *testing.T) {
		body := `{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
		status, h, _ := e.raw("POST", "/v1/messages", []byte(body), e.auth())
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		if !strings.HasPrefix(h.Get("request-id"), "req_") {
			t.Errorf("upstream request-id not relayed: %q", h.Get("request-id"))
		}
		if h.Get("anthropic-ratelimit-requests-limit") == "" {
			t.Errorf("anthropic-ratelimit-* not relayed")
		}
		if h.Get("x-moat-request-id") == "" {
			t.Errorf("no x-moat-request-id")
		}
	})
}

// errorBody decodes and checks Anthropic's error shape.
func errorBody(t *testing.T, b []byte) (typ, msg string) {
	t.Helper()
	var eb struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &eb); err != nil || eb.Type != "error" || eb.Error.Type == "" || eb.Error.Message == "" {
		t.Fatalf("not an Anthropic error body: %s", b)
	}
	return eb.Error.Type, eb.Error.Message
}

func TestErrorStatuses(t *testing.T) {
	e := start(t, envOpts{
		server:   "max_body_bytes = 4096",
		upstream: `first_byte_timeout = "500ms"`,
		client: `models = ["` + model + `"]
max_tokens = 1000
rate = "1000-M"`,
		extra: "[retry]\nattempts = 1\n",
	})
	ok := func(content string) string {
		return `{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":` + content + `}]}`
	}
	hdr := e.auth
	without := func(k string) map[string][]string { h := e.auth(); delete(h, k); return h }
	with := func(k, v string) map[string][]string { h := e.auth(); h[k] = []string{v}; return h }
	twoKeys := e.auth()
	twoKeys["x-api-key"] = []string{e.key, e.key}
	cases := []struct {
		name    string
		path    string
		body    string
		hdr     map[string][]string
		fault   *standin.Fault
		status  int
		typ     string
		mention string
	}{
		{"malformed json", "/v1/messages", `{"model":`, hdr(), nil, 400, "invalid_request_error", "JSON"},
		{"not an object", "/v1/messages", `[1,2]`, hdr(), nil, 400, "invalid_request_error", ""},
		{"wrong type max_tokens", "/v1/messages", `{"model":"` + model + `","max_tokens":"ten","messages":[{"role":"user","content":"hi"}]}`, hdr(), nil, 400, "invalid_request_error", "max_tokens"},
		{"missing max_tokens", "/v1/messages", `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`, hdr(), nil, 400, "invalid_request_error", "max_tokens"},
		{"empty messages", "/v1/messages", `{"model":"` + model + `","max_tokens":10,"messages":[]}`, hdr(), nil, 400, "invalid_request_error", "messages"},
		{"bad role", "/v1/messages", `{"model":"` + model + `","max_tokens":10,"messages":[{"role":"tool","content":"x"}]}`, hdr(), nil, 400, "invalid_request_error", "role"},
		{"content wrong type", "/v1/messages", ok(`42`), hdr(), nil, 400, "invalid_request_error", "content"},
		{"invalid utf-8", "/v1/messages", ok("\"caf\xe9\""), hdr(), nil, 400, "invalid_request_error", "UTF-8"},
		{"over client max_tokens", "/v1/messages", `{"model":"` + model + `","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`, hdr(), nil, 400, "invalid_request_error", "max_tokens"},
		{"missing key", "/v1/messages", ok(`"hi"`), without("x-api-key"), nil, 401, "authentication_error", ""},
		{"wrong key", "/v1/messages", ok(`"hi"`), with("x-api-key", "moat_wrongwrongwrongwrongwrongwrongwrongwrong1"), nil, 401, "authentication_error", ""},
		{"anthropic key as client key", "/v1/messages", ok(`"hi"`), with("x-api-key", fakeUpstreamKey("x")), nil, 401, "authentication_error", ""},
		{"second x-api-key header", "/v1/messages", ok(`"hi"`), twoKeys, nil, 401, "authentication_error", "x-api-key"},
		{"model not allowed", "/v1/messages", `{"model":"claude-opus-5-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, hdr(), nil, 403, "permission_error", "model"},
		{"unknown path", "/v1/nope", ok(`"hi"`), hdr(), nil, 404, "not_found_error", ""},
		{"oversize body", "/v1/messages", ok(`"` + strings.Repeat("a", 5000) + `"`), hdr(), nil, 413, "request_too_large", ""},
		{"upstream 500", "/v1/messages", ok(`"hi"`), hdr(), &standin.Fault{Kind: standin.FaultServerError, Count: 1}, 500, "api_error", ""},
		{"upstream 529 passthrough", "/v1/messages", ok(`"hi"`), hdr(), &standin.Fault{Kind: standin.FaultOverloaded, Count: 1}, 529, "overloaded_error", ""},
		{"upstream 429 passthrough", "/v1/messages", ok(`"hi"`), hdr(), &standin.Fault{Kind: standin.FaultRateLimit, Count: 1, RetryAfter: "30"}, 429, "rate_limit_error", ""},
		{"upstream malformed json", "/v1/messages", ok(`"hi"`), hdr(), &standin.Fault{Kind: standin.FaultMalformedJSON, Count: 1}, 502, "api_error", ""},
		{"upstream slow first byte", "/v1/messages", ok(`"hi"`), hdr(), &standin.Fault{Kind: standin.FaultSlowFirstByte, Count: 1, Delay: 2 * time.Second}, 504, "api_error", "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.auditLines())
			if tc.fault != nil {
				if err := e.si.SetFault(*tc.fault); err != nil {
					t.Fatal(err)
				}
				defer e.si.ClearFault()
			}
			status, h, body := e.raw("POST", tc.path, []byte(tc.body), tc.hdr)
			if status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", status, tc.status, body)
			}
			typ, msg := errorBody(t, body)
			if typ != tc.typ {
				t.Errorf("type = %q, want %q (%s)", typ, tc.typ, msg)
			}
			if tc.mention != "" && !strings.Contains(msg, tc.mention) {
				t.Errorf("message %q does not mention %q", msg, tc.mention)
			}
			if tc.status == 429 && h.Get("retry-after") == "" {
				t.Errorf("429 without retry-after")
			}
			if strings.Contains(msg, "goroutine") || strings.Contains(msg, ".go:") {
				t.Errorf("stack trace in error: %s", msg)
			}
			if tc.path == "/v1/messages" {
				if after := len(e.auditLines()); after != before+1 {
					t.Errorf("audit lines %d -> %d, want one new line", before, after)
				}
			}
		})
	}
	t.Run("upstream down", func(t *testing.T) {
		e.si.Close()
		status, _, body := e.raw("POST", "/v1/messages", []byte(ok(`"hi"`)), hdr())
		if status != 502 {
			t.Fatalf("status = %d, want 502; %s", status, body)
		}
		errorBody(t, body)
	})
}

func TestClientRateLimit(t *testing.T) {
	e := start(t, envOpts{client: `rate = "2-M"`})
	body := []byte(`{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	for i := 0; i < 2; i++ {
		if status, h, b := e.raw("POST", "/v1/messages", body, e.auth()); status != 200 {
			t.Fatalf("request %d: %d %s", i, status, b)
		} else if h.Get("X-RateLimit-Limit") == "" {
			t.Errorf("no X-RateLimit-Limit header")
		}
	}
	status, h, b := e.raw("POST", "/v1/messages", body, e.auth())
	if status != 429 {
		t.Fatalf("third request: %d %s", status, b)
	}
	if typ, _ := errorBody(t, b); typ != "rate_limit_error" {
		t.Errorf("type %q", typ)
	}
	if h.Get("retry-after") == "" || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("rate headers: retry-after=%q remaining=%q", h.Get("retry-after"), h.Get("X-RateLimit-Remaining"))
	}
}

// TestFaithfulRelay sends every kind of field moat does not change and
// checks the stand-in received the same JSON values.
func TestFaithfulRelay(t *testing.T) {
	e := start(t, envOpts{})
	body := `{
	  "model": "` + model + `",
	  "max_tokens": 1024,
	  "system": [{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
	  "metadata": {"user_id": "u-123"},
	  "thinking": {"type": "enabled", "budget_tokens": 512},
	  "tools": [{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"cache_control":{"type":"ephemeral"}}],
	  "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
	  "temperature": 0.25,
	  "stop_sequences": ["END"],
	  "future_field_moat_does_not_know": {"nested": [1, 2.5, "x", null, true]},
	  "messages": [
	    {"role":"user","content":[
	      {"type":"text","text":"What is in this image?","cache_control":{"type":"ephemeral","ttl":"5m"}},
	      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}}
	    ]},
	    {"role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}]},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"18°C and sunny"}]}
	  ]
	}`
	status, _, b := e.raw("POST", "/v1/messages", []byte(body), e.auth())
	if status != 200 {
		t.Fatalf("status %d: %s", status, b)
	}
	var sent, got any
	if err := json.Unmarshal([]byte(body), &sent); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.si.Last().Body, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sent, got) {
		gb, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("upstream received different JSON:\n%s", gb)
	}
	// The beta header is forwarded, the client's credentials are not.
	h := e.auth()
	h["anthropic-beta"] = []string{"prompt-caching-2024-07-31"}
	h["Authorization"] = []string{"Bearer " + e.key}
	delete(h, "x-api-key")
	if status, _, b := e.raw("POST", "/v1/messages", []byte(body), h); status != 200 {
		t.Fatalf("status %d: %s", status, b)
	}
	last := e.si.Last()
	if last.Header.Get("anthropic-beta") != "prompt-caching-2024-07-31" {
		t.Errorf("anthropic-beta not forwarded: %q", last.Header.Get("anthropic-beta"))
	}
	if last.Header.Get("Authorization") != "" {
		t.Errorf("Authorization forwarded upstream")
	}
}

// TestSDKErrorsDecode checks the SDK sees moat's errors as API errors.
func TestSDKErrorsDecode(t *testing.T) {
	e := start(t, envOpts{})
	bad := e.sdk(optionAPIKey("moat_not_a_real_key_000000000000000000000000"))
	_, err := bad.Messages.New(context.Background(), userMsg("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want a 401 *anthropic.Error", err)
	}
}
