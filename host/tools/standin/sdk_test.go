package standin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/moat-gateway/moat/host/tools/standin"
)

func TestSDKMessageNonStreaming(t *testing.T) {
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	const prompt = "Hello <b>there</b>, stand-in"

	var raw *http.Response
	msg, err := client.Messages.New(context.Background(), userParams(prompt), option.WithResponseInto(&raw))
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	want := standin.EchoPrefix + prompt
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != want {
		t.Fatalf("content = %+v, want one text block %q", msg.Content, want)
	}
	if !strings.HasPrefix(msg.ID, "msg_") || msg.Type != "message" || msg.Role != "assistant" || msg.Model != standin.DefaultModel {
		t.Errorf("envelope = id %q type %q role %q model %q", msg.ID, msg.Type, msg.Role, msg.Model)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn || msg.StopSequence != "" {
		t.Errorf("stop = %q %q", msg.StopReason, msg.StopSequence)
	}
	if got, want := msg.Usage.InputTokens, int64(standin.EstimateTokens(len(prompt))); got != want {
		t.Errorf("input_tokens = %d, want %d", got, want)
	}
	if got, want := msg.Usage.OutputTokens, int64(standin.EstimateTokens(len(want))); got != want {
		t.Errorf("output_tokens = %d, want %d", got, want)
	}
	for _, field := range []string{"cache_creation_input_tokens", "cache_read_input_tokens"} {
		if !strings.Contains(msg.Usage.RawJSON(), `"`+field+`":0`) {
			t.Errorf("usage %s lacks %s", msg.Usage.RawJSON(), field)
		}
	}
	if !strings.Contains(msg.RawJSON(), `"stop_sequence":null`) {
		t.Errorf("stop_sequence is not null in %s", msg.RawJSON())
	}
	if !strings.Contains(msg.RawJSON(), "<b>there</b>") {
		t.Errorf("reply JSON escapes HTML, the API does not: %s", msg.RawJSON())
	}
	if ct := raw.Header.Get("content-type"); ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	if id := raw.Header.Get("request-id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("request-id = %q", id)
	}
	for _, h := range []string{"requests-limit", "requests-remaining", "requests-reset", "tokens-limit", "tokens-remaining", "tokens-reset"} {
		if raw.Header.Get("anthropic-ratelimit-"+h) == "" {
			t.Errorf("missing header anthropic-ratelimit-%s", h)
		}
	}
	if _, err := time.Parse(time.RFC3339, raw.Header.Get("anthropic-ratelimit-requests-reset")); err != nil {
		t.Errorf("requests-reset is not RFC 3339: %v", err)
	}

	// The recorded request is what the SDK sent.
	last := s.Last()
	if last.Method != http.MethodPost || last.Path != "/v1/messages" {
		t.Fatalf("recorded %s %s", last.Method, last.Path)
	}
	if last.APIKey() != testKey || last.Header.Get("anthropic-version") == "" {
		t.Errorf("recorded headers %v", last.Header)
	}
	var body struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Messages  []struct {
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(last.Body, &body); err != nil {
		t.Fatalf("recorded body is not JSON: %v", err)
	}
	if body.Model != standin.DefaultModel || body.MaxTokens != 1024 || len(body.Messages) != 1 ||
		body.Messages[0].Role != "user" || body.Messages[0].Content[0].Text != prompt {
		t.Errorf("recorded body = %s", last.Body)
	}
}

func TestSDKStreamingReassembles(t *testing.T) {
	tests := []struct {
		name      string
		deltaSize int
		reply     string
		minDeltas int
	}{
		{"words", 0, "one two three four five six seven eight nine ten", 3},
		{"ascii bytes", 4, "abcdefghijklmnopqrstuvwxyz", 7},
		{"multibyte split", 3, "héllo wörld 😀 日本語 ok", 8},
		{"emoji only", 1, "😀😃😄", 3},
		{"single delta", 1000, "short", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, standin.Options{DeltaSize: tc.deltaSize})
			s.SetReply(tc.reply)
			client := newSDK(t, s)
			stream := client.Messages.NewStreaming(context.Background(), userParams("stream please"))
			defer stream.Close()
			var msg anthropic.Message
			var types, deltas []string
			for stream.Next() {
				ev := stream.Current()
				types = append(types, ev.Type)
				if ev.Type == "content_block_delta" {
					if ev.Delta.Type != "text_delta" {
						t.Fatalf("delta type %q", ev.Delta.Type)
					}
					if !utf8.ValidString(ev.Delta.Text) || ev.Delta.Text == "" {
						t.Fatalf("delta %q is empty or splits a character", ev.Delta.Text)
					}
					if tc.deltaSize > 0 && len(ev.Delta.Text) > tc.deltaSize && utf8.RuneCountInString(ev.Delta.Text) > 1 {
						t.Fatalf("delta %q is longer than %d bytes", ev.Delta.Text, tc.deltaSize)
					}
					deltas = append(deltas, ev.Delta.Text)
				}
				if err := msg.Accumulate(ev); err != nil {
					t.Fatalf("Accumulate: %v", err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != tc.reply {
				t.Fatalf("reassembled %+v, want %q", msg.Content, tc.reply)
			}
			if len(deltas) < tc.minDeltas {
				t.Errorf("%d deltas %q, want at least %d", len(deltas), deltas, tc.minDeltas)
			}
			wantTypes := []string{"message_start", "content_block_start"}
			for range deltas {
				wantTypes = append(wantTypes, "content_block_delta")
			}
			wantTypes = append(wantTypes, "content_block_stop", "message_delta", "message_stop")
			if !slices.Equal(types, wantTypes) {
				t.Errorf("events %v, want %v (ping is skipped by the SDK)", types, wantTypes)
			}
			if msg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("stop_reason %q", msg.StopReason)
			}
			if got, want := msg.Usage.OutputTokens, int64(standin.EstimateTokens(len(tc.reply))); got != want {
				t.Errorf("output_tokens %d, want %d", got, want)
			}
			if got, want := msg.Usage.InputTokens, int64(standin.EstimateTokens(len("stream please"))); got != want {
				t.Errorf("input_tokens %d, want %d", got, want)
			}
			if err := s.WaitStreamsClosed(context.Background()); err != nil || s.OpenStreams() != 0 {
				t.Errorf("streams still open: %d %v", s.OpenStreams(), err)
			}
		})
	}
}

func TestStreamWireFormat(t *testing.T) {
	s := startServer(t, standin.Options{DeltaSize: 5})
	s.SetReply("Hello, world")
	resp, body := rawDo(t, s, http.MethodPost, "/v1/messages",
		`{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content-type %q", ct)
	}
	if !strings.HasPrefix(resp.Header.Get("request-id"), "req_") {
		t.Errorf("request-id %q", resp.Header.Get("request-id"))
	}
	evs := readSSE(t, body)
	want := []string{"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if got := eventNames(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	var start struct {
		Message struct {
			ID         string            `json:"id"`
			Model      string            `json:"model"`
			Content    []json.RawMessage `json:"content"`
			StopReason *string           `json:"stop_reason"`
			Usage      map[string]any    `json:"usage"`
		} `json:"message"`
	}
	if err := json.Unmarshal(evs[0].data, &start); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(start.Message.ID, "msg_") || start.Message.Model != "claude-haiku-4-5" ||
		start.Message.Content == nil || len(start.Message.Content) != 0 || start.Message.StopReason != nil {
		t.Errorf("message_start %s", evs[0].data)
	}
	if start.Message.Usage["input_tokens"] != float64(1) {
		t.Errorf("message_start usage %v", start.Message.Usage)
	}
	if got := string(evs[1].data); got != `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` {
		t.Errorf("content_block_start %s", got)
	}
	if got := string(evs[3].data); got != `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}` {
		t.Errorf("first delta %s", got)
	}
	if got := string(evs[7].data); got != `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"stop_details":null},"usage":{"output_tokens":3}}` {
		t.Errorf("message_delta %s", got)
	}
}

func TestMaxTokensCutsReply(t *testing.T) {
	s := startServer(t, standin.Options{})
	s.SetReply(strings.Repeat("abcd", 100))
	client := newSDK(t, s)
	p := userParams("x")
	p.MaxTokens = 5
	msg, err := client.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonMaxTokens || msg.Content[0].Text != strings.Repeat("abcd", 5) || msg.Usage.OutputTokens != 5 {
		t.Errorf("got stop %q text %q output %d", msg.StopReason, msg.Content[0].Text, msg.Usage.OutputTokens)
	}
}

func TestRepliesSequenceAndUsageOverride(t *testing.T) {
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	s.SetReplies([]string{`{"broken": `, `{"ok": true}`})
	var got []string
	for range 3 {
		msg, err := client.Messages.New(context.Background(), userParams("give me JSON"))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg.Content[0].Text)
	}
	if want := []string{`{"broken": `, `{"ok": true}`, `{"ok": true}`}; !slices.Equal(got, want) {
		t.Errorf("replies %q, want %q", got, want)
	}

	s.SetUsage(&standin.Usage{InputTokens: 1234, OutputTokens: 56, CacheReadInputTokens: 7})
	msg, err := client.Messages.New(context.Background(), userParams("x"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Usage.InputTokens != 1234 || msg.Usage.OutputTokens != 56 || msg.Usage.CacheReadInputTokens != 7 {
		t.Errorf("usage %+v", msg.Usage)
	}
	count, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model: standin.DefaultModel, Messages: userParams("x").Messages,
	})
	if err != nil || count.InputTokens != 1234 {
		t.Errorf("count_tokens with override = %v, %v", count, err)
	}

	s.SetUsage(nil)
	s.SetReplies(nil)
	msg, err = client.Messages.New(context.Background(), userParams("back to echo"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != standin.EchoPrefix+"back to echo" || msg.Usage.InputTokens != 3 {
		t.Errorf("after reset: %q %+v", msg.Content[0].Text, msg.Usage)
	}
}

func TestEchoUsesLastUserMessageAndCutsIt(t *testing.T) {
	s := startServer(t, standin.Options{})
	long := strings.Repeat("é", standin.EchoMaxBytes) // 2 bytes each
	body := `{"model":"m","max_tokens":1000,"system":[{"type":"text","text":"sys"}],"messages":[` +
		`{"role":"user","content":"first"},{"role":"assistant","content":"mid"},` +
		`{"role":"user","content":[{"type":"text","text":"` + long + `"},{"type":"image","source":{}}]}]}`
	resp, out := rawDo(t, s, http.MethodPost, "/v1/messages", body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	var msg anthropic.Message
	if err := json.Unmarshal(out, &msg); err != nil {
		t.Fatal(err)
	}
	want := standin.EchoPrefix + long[:standin.EchoMaxBytes]
	if msg.Content[0].Text != want {
		t.Errorf("echo %q, want %q", msg.Content[0].Text, want)
	}
	textBytes := len("sys") + len("first") + len("mid") + len(long)
	if msg.Usage.InputTokens != int64(standin.EstimateTokens(textBytes)) {
		t.Errorf("input_tokens %d, want %d", msg.Usage.InputTokens, standin.EstimateTokens(textBytes))
	}
	if string(s.Last().Body) != body {
		t.Errorf("recorded body differs from the bytes sent")
	}
}

func TestSDKCountTokens(t *testing.T) {
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	text := strings.Repeat("word ", 40)
	res, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    standin.DefaultModel,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.InputTokens != int64(standin.EstimateTokens(len(text))) {
		t.Errorf("input_tokens %d", res.InputTokens)
	}
	if res.RawJSON() != `{"input_tokens":50}` {
		t.Errorf("body %s", res.RawJSON())
	}
	if s.Last().Path != "/v1/messages/count_tokens" {
		t.Errorf("recorded path %q", s.Last().Path)
	}
}

func TestSDKModels(t *testing.T) {
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	page, err := client.Models.List(context.Background(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.Type != "model" || m.DisplayName == "" || m.CreatedAt.IsZero() || m.Lifecycle != anthropic.ModelInfoLifecycleActive ||
			m.MaxTokens == 0 || !m.Capabilities.Thinking.Supported {
			t.Errorf("model %s: %s", m.ID, m.RawJSON())
		}
	}
	if !slices.Equal(ids, standin.Models()) || page.HasMore || page.FirstID != ids[0] || page.LastID != ids[len(ids)-1] {
		t.Errorf("list %v has_more %v first %q last %q", ids, page.HasMore, page.FirstID, page.LastID)
	}
	if !slices.Contains(ids, standin.DefaultModel) {
		t.Errorf("DefaultModel %q not listed", standin.DefaultModel)
	}

	// Auto-paging with a small page walks the same list.
	var paged []string
	iter := client.Models.ListAutoPaging(context.Background(), anthropic.ModelListParams{Limit: anthropic.Int(3)})
	for iter.Next() {
		paged = append(paged, iter.Current().ID)
	}
	if err := iter.Err(); err != nil || !slices.Equal(paged, ids) {
		t.Errorf("paged %v, %v", paged, err)
	}

	m, err := client.Models.Get(context.Background(), standin.DefaultModel, anthropic.ModelGetParams{})
	if err != nil || m.ID != standin.DefaultModel {
		t.Errorf("Get = %v, %v", m, err)
	}
	_, err = client.Models.Get(context.Background(), "claude-nope", anthropic.ModelGetParams{})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type() != "not_found_error" {
		t.Errorf("Get unknown = %v", err)
	}
}

func TestSDKErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(*standin.Server)
		opts       []option.RequestOption
		params     func() anthropic.MessageNewParams
		status     int
		typ        string
		retryAfter string
	}{
		{name: "wrong key", opts: []option.RequestOption{option.WithAPIKey("sk-wrong")}, status: 401, typ: "authentication_error"},
		{name: "no version", opts: []option.RequestOption{option.WithHeaderDel("anthropic-version")}, status: 400, typ: "invalid_request_error"},
		{name: "zero max_tokens", params: func() anthropic.MessageNewParams { p := userParams("x"); p.MaxTokens = 0; return p }, status: 400, typ: "invalid_request_error"},
		{name: "no messages", params: func() anthropic.MessageNewParams { p := userParams("x"); p.Messages = nil; return p }, status: 400, typ: "invalid_request_error"},
		{name: "api_error", setup: func(s *standin.Server) { mustFault(t, s, standin.Fault{Kind: standin.FaultServerError}) }, status: 500, typ: "api_error"},
		{name: "overloaded", setup: func(s *standin.Server) { mustFault(t, s, standin.Fault{Kind: standin.FaultOverloaded}) }, status: 529, typ: "overloaded_error"},
		{name: "rate limit", setup: func(s *standin.Server) { mustFault(t, s, standin.Fault{Kind: standin.FaultRateLimit, RetryAfter: "7"}) }, status: 429, typ: "rate_limit_error", retryAfter: "7"},
		{name: "generic 403", setup: func(s *standin.Server) { mustFault(t, s, standin.Fault{Kind: standin.FaultError, Status: 403}) }, status: 403, typ: "permission_error"},
		{name: "generic 504", setup: func(s *standin.Server) { mustFault(t, s, standin.Fault{Kind: standin.FaultError, Status: 504}) }, status: 504, typ: "timeout_error"},
		{name: "marker overloaded", params: func() anthropic.MessageNewParams { return userParams("hi MOAT_FAULT:overloaded") }, status: 529, typ: "overloaded_error"},
		{name: "marker unknown", params: func() anthropic.MessageNewParams { return userParams("MOAT_FAULT:nope") }, status: 400, typ: "invalid_request_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, standin.Options{})
			if tc.setup != nil {
				tc.setup(s)
			}
			client := newSDK(t, s, tc.opts...)
			params := userParams("hello")
			if tc.params != nil {
				params = tc.params()
			}
			for _, streaming := range []bool{false, true} {
				var err error
				if streaming {
					stream := client.Messages.NewStreaming(context.Background(), params)
					for stream.Next() {
					}
					err = stream.Err()
					stream.Close()
				} else {
					_, err = client.Messages.New(context.Background(), params)
				}
				var apiErr *anthropic.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("streaming=%v: error %v is not *anthropic.Error", streaming, err)
				}
				if apiErr.StatusCode != tc.status || string(apiErr.Type()) != tc.typ {
					t.Errorf("streaming=%v: got %d %q, want %d %q", streaming, apiErr.StatusCode, apiErr.Type(), tc.status, tc.typ)
				}
				if !strings.HasPrefix(apiErr.RequestID, "req_") || !strings.Contains(apiErr.RawJSON(), `"request_id":"`+apiErr.RequestID+`"`) {
					t.Errorf("request id %q not in body %s", apiErr.RequestID, apiErr.RawJSON())
				}
				if apiErr.Message == "" {
					t.Errorf("empty error message")
				}
				if got := apiErr.Response.Header.Get("retry-after"); got != tc.retryAfter {
					t.Errorf("retry-after %q, want %q", got, tc.retryAfter)
				}
			}
		})
	}
}

func mustFault(t *testing.T, s *standin.Server, f standin.Fault) {
	t.Helper()
	if err := s.SetFault(f); err != nil {
		t.Fatalf("SetFault: %v", err)
	}
}
