package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/auth"
)

// inCI reports whether the tests run under CI, where a missing tool is a
// failure rather than a skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// needTool fails under CI and skips elsewhere, with why.
func needTool(t testing.TB, why string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s (CI=true: this test must run)", why)
	}
	t.Skip(why)
}

// extraClient returns a fresh key and the TOML block of one more
// [[clients]] entry with that key; body goes inside the block.
func extraClient(t testing.TB, id, body string) (key, block string) {
	t.Helper()
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, fmt.Sprintf("\n[[clients]]\nid = %q\nkey_sha256 = %q\n%s\n", id, hash, body)
}

// keyHeaders returns the headers of an authenticated JSON request with key.
func keyHeaders(key string) map[string][]string {
	return map[string][]string{
		"x-api-key":         {key},
		"anthropic-version": {"2023-06-01"},
		"content-type":      {"application/json"},
	}
}

// messageBody is a /v1/messages body with one user message.
func messageBody(text string, maxTokens int, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": model, "max_tokens": maxTokens, "stream": stream,
		"messages": []any{map[string]any{"role": "user", "content": text}},
	})
	return b
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data string
}

// parseSSE splits a raw event stream into events.
func parseSSE(t testing.TB, raw []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Name != "" || cur.Data != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data += strings.TrimPrefix(line, "data: ")
		}
	}
	if cur.Name != "" || cur.Data != "" {
		out = append(out, cur)
	}
	return out
}

// textDeltas returns the text of every text_delta event, in order.
func textDeltas(t testing.TB, evs []sseEvent) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if ev.Name != "content_block_delta" {
			continue
		}
		var d struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			t.Fatalf("bad content_block_delta %q: %v", ev.Data, err)
		}
		if d.Delta.Type == "text_delta" {
			out = append(out, d.Delta.Text)
		}
	}
	return out
}

// lastEvent names the final event of a stream ("" when empty).
func lastEvent(evs []sseEvent) string {
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1].Name
}

// nonStreamText sends a non-streaming request with key and returns the
// status and the concatenated text of the answer (or the error message).
func (e *env) nonStreamText(t testing.TB, key, prompt string) (int, string) {
	t.Helper()
	status, _, b := e.raw(http.MethodPost, "/v1/messages", messageBody(prompt, 512, false), keyHeaders(key))
	if status != http.StatusOK {
		var eb struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		return status, eb.Error.Message
	}
	var msg struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatalf("decoding answer %s: %v", b, err)
	}
	var sb strings.Builder
	for _, c := range msg.Content {
		if c.Type == "text" {
			sb.WriteString(c.Text)
		}
	}
	return status, sb.String()
}

// streamRaw posts a streaming request with key and returns the raw SSE
// bytes.
func (e *env) streamRaw(t testing.TB, key, prompt string) []byte {
	t.Helper()
	status, _, b := e.raw(http.MethodPost, "/v1/messages", messageBody(prompt, 512, true), keyHeaders(key))
	if status != http.StatusOK {
		t.Fatalf("stream status %d: %s", status, b)
	}
	return b
}
