package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// validatorPlugins defines the built-ins the streaming tests chain.
const validatorPlugins = `
[[plugins]]
name = "html-escape"
builtin = "html-escape"
streaming = "incremental"
hold_back = 1

[[plugins]]
name = "secret-redact"
builtin = "secret-redact"
streaming = "incremental"
hold_back = 256

[[plugins]]
name = "deny"
builtin = "deny-patterns"
streaming = "incremental"
hold_back = 64
config = { patterns = ["FORBIDDEN-[0-9]+"] }
`

// rawStream posts a streaming request and returns the raw SSE bytes.
func (e *env) rawStream(t *testing.T, text string) []byte {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": model, "max_tokens": 256, "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": text}},
	})
	req, _ := http.NewRequest("POST", e.url+"/v1/messages", bytes.NewReader(body))
	for k, vs := range e.auth() {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e.seen.Write(b)
	return b
}

// sseText reassembles text deltas and reports the terminal event.
func sseText(t *testing.T, raw []byte) (text string, last string) {
	t.Helper()
	evs := parseSSE(t, raw)
	if len(evs) > 0 {
		last = evs[len(evs)-1].Name
	}
	return strings.Join(textDeltas(t, evs), ""), last
}

func TestStreamingValidators(t *testing.T) {
	secret := "sk-" + "ant-" + "api03-" + strings.Repeat("Q7", 30) + "-xyzAA"
	cases := []struct {
		name      string
		chain     string
		reply     string
		wantText  string
		forbidden []string
		wantLast  string
	}{
		{
			name:      "xss split across deltas is escaped",
			chain:     `["html-escape"]`,
			reply:     `Here you go: <script>alert("x")</script><img src=x onerror=alert(1)> done`,
			wantText:  html.EscapeString(`Here you go: <script>alert("x")</script><img src=x onerror=alert(1)> done`),
			forbidden: []string{"<script", "<img"},
			wantLast:  "message_stop",
		},
		{
			name:      "secret split across deltas is redacted",
			chain:     `["secret-redact"]`,
			reply:     "The key is " + secret + " and that is all you get from me today, friend.",
			forbidden: []string{secret, secret[:30], secret[20:50]},
			wantLast:  "message_stop",
		},
		{
			name:      "reject mid-stream ends with an error event",
			chain:     `["deny"]`,
			reply:     strings.Repeat("harmless words here ", 30) + "then FORBIDDEN-1234 appears " + strings.Repeat("more text ", 20),
			forbidden: []string{"FORBIDDEN-1234", "then FORBIDDEN", "more text"},
			wantLast:  "error",
		},
		{
			name:     "no validators: passthrough",
			chain:    `[]`,
			reply:    "plain <b>reply</b> with " + secret[:12],
			wantText: "plain <b>reply</b> with " + secret[:12],
			wantLast: "message_stop",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, envOpts{
				client: "output = " + tc.chain,
				extra:  validatorPlugins,
				si:     standin.Options{DeltaSize: 3},
			})
			e.si.SetReply(tc.reply)
			raw := e.rawStream(t, "hi")
			text, last := sseText(t, raw)
			if last != tc.wantLast {
				t.Fatalf("stream ended with %q, want %q\n%s", last, tc.wantLast, raw)
			}
			for _, f := range tc.forbidden {
				if bytes.Contains(raw, []byte(f)) || strings.Contains(text, f) {
					t.Errorf("forbidden %q reached the client", f)
				}
			}
			if tc.wantText != "" && text != tc.wantText {
				t.Errorf("text = %q, want %q", text, tc.wantText)
			}
			if tc.name == "secret split across deltas is redacted" && !strings.Contains(text, "REDACTED") {
				t.Errorf("no redaction marker in %q", text)
			}
			if tc.wantLast == "error" {
				if !strings.Contains(string(raw), `"type":"error"`) || !strings.Contains(string(raw), "deny") {
					t.Errorf("error event does not name the plugin:\n%s", raw)
				}
			}
			// The official SDK parses the same stream.
			e.si.SetReply(tc.reply)
			sc := e.sdk()
			stream := sc.Messages.NewStreaming(context.Background(), userMsg("hi"))
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatalf("accumulate: %v", err)
				}
			}
			if tc.wantLast == "error" {
				if stream.Err() == nil {
					t.Errorf("SDK saw no error for a rejected stream")
				}
			} else if err := stream.Err(); err != nil {
				t.Fatalf("SDK stream: %v", err)
			} else if tc.wantText != "" && acc.Content[0].Text != tc.wantText {
				t.Errorf("SDK text = %q", acc.Content[0].Text)
			}
		})
	}
}

func TestNonStreamingOutputChain(t *testing.T) {
	e := start(t, envOpts{client: `output = ["html-escape", "deny"]`, extra: validatorPlugins})
	e.si.SetReply(`<b>hi</b>`)
	sc := e.sdk()
	msg, err := sc.Messages.New(context.Background(), userMsg("x"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "&lt;b&gt;hi&lt;/b&gt;" {
		t.Errorf("text = %q", msg.Content[0].Text)
	}
	e.si.SetReply("FORBIDDEN-1")
	status, _, b := e.raw("POST", "/v1/messages", []byte(`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`), e.auth())
	if status != 502 {
		t.Fatalf("status %d: %s", status, b)
	}
	if _, msg := errorBody(t, b); !strings.Contains(msg, "deny") {
		t.Errorf("message does not name the plugin: %s", msg)
	}
	if strings.Contains(string(b), "FORBIDDEN-1") {
		t.Errorf("rejected output reached the client")
	}
}
