package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sseUpstream serves a fixed SSE body for every Messages call, like an
// upstream that puts content where the API never does.
func sseUpstream(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		w.Header().Set("request-id", "req_edge")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func ev(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

// TestGuardSeesStartAndMessageContent: text placed in a content_block_start
// goes through the output chain like a delta; content in message_start is
// refused, so no unvalidated byte reaches the client that way either.
func TestGuardSeesStartAndMessageContent(t *testing.T) {
	tail := ev("content_block_stop", `{"type":"content_block_stop","index":0}`) +
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}`) +
		ev("message_stop", `{"type":"message_stop"}`)
	msgStart := ev("message_start", `{"type":"message_start","message":{"id":"msg_e","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`)
	cases := []struct {
		name, body, wantLast, wantText string
	}{
		{
			name: "text in content_block_start",
			body: msgStart + ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"<script>alert(1)</script>"}}`) +
				ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" <b>more</b>"}}`) + tail,
			wantLast: "message_stop",
			wantText: "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;more&lt;/b&gt;",
		},
		{
			name: "content in message_start",
			body: ev("message_start", `{"type":"message_start","message":{"id":"msg_e","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"<script>alert(2)</script>"}],"usage":{"input_tokens":3,"output_tokens":1}}}`) +
				ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`) + tail,
			wantLast: "error",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, envOpts{upstreamURL: sseUpstream(t, tc.body), client: `output = ["html-escape"]`, extra: validatorPlugins})
			raw := e.rawStream(t, "hi")
			if strings.Contains(string(raw), "<script") {
				t.Fatalf("unescaped markup reached the client:\n%s", raw)
			}
			text, last := sseText(t, raw)
			if last != tc.wantLast {
				t.Fatalf("stream ended with %q, want %q:\n%s", last, tc.wantLast, raw)
			}
			if tc.wantText != "" && text != tc.wantText {
				t.Fatalf("text = %q, want %q", text, tc.wantText)
			}
		})
	}
}
