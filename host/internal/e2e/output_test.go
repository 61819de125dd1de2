package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// outputChain is the output chain of the tests below: html-escape and
// secret-redact judge every string the client receives.
const outputChain = `output = ["html-escape", "secret-redact"]`

// xssPayload must come out escaped, secretPayload (a GitHub token, which
// secret-redact knows and moat's own key scrubber does not) redacted.
const xssPayload = `<script>alert(1)</script>`

func secretPayload() string { return "ghp_" + strings.Repeat("FAKE0", 8) }

// fieldCase is one place of a response that carries text: a list of
// blocks with PAYLOAD in that place.
type fieldCase struct {
	name   string
	blocks []string
	// signed is set for thinking: a modify verdict refuses the response.
	signed bool
}

// everyField lists every response field that carries text, by block type
// (anthropic-sdk-go v2 ContentBlockUnion and its nested types).
var everyField = []fieldCase{
	{name: "text", blocks: []string{`{"type":"text","text":"before PAYLOAD after"}`}},
	{name: "citation cited_text", blocks: []string{`{"type":"text","text":"cited","citations":[{"type":"char_location","cited_text":"PAYLOAD","document_index":0,"document_title":"doc","start_char_index":0,"end_char_index":5,"file_id":null}]}`}},
	{name: "citation document_title", blocks: []string{`{"type":"text","text":"cited","citations":[{"type":"page_location","cited_text":"c","document_index":0,"document_title":"PAYLOAD","start_page_number":1,"end_page_number":2,"file_id":null}]}`}},
	{name: "citation web search title and url", blocks: []string{`{"type":"text","text":"cited","citations":[{"type":"web_search_result_location","cited_text":"c","encrypted_index":"Eo8BCioIAhgB","title":"PAYLOAD","url":"https://example.com/PAYLOAD"}]}`}},
	{name: "citation search result source", blocks: []string{`{"type":"text","text":"cited","citations":[{"type":"search_result_location","cited_text":"c","search_result_index":0,"source":"PAYLOAD","title":"t","start_block_index":0,"end_block_index":0}]}`}},
	{name: "tool_use input value", blocks: []string{`{"type":"tool_use","id":"toolu_01","name":"run","input":{"cmd":"PAYLOAD","n":1}}`}},
	{name: "tool_use nested input", blocks: []string{`{"type":"tool_use","id":"toolu_01","name":"run","input":{"args":["x",{"deep":"PAYLOAD"}]}}`}},
	{name: "server_tool_use input", blocks: []string{`{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{"query":"PAYLOAD"}}`}},
	{name: "web_search_tool_result title", blocks: []string{`{"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[{"type":"web_search_result","title":"PAYLOAD","url":"https://example.com/","encrypted_content":"EqgfCioIARgB","page_age":null}]}`}},
	{name: "web_search_tool_result url and page_age", blocks: []string{`{"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[{"type":"web_search_result","title":"t","url":"https://example.com/PAYLOAD","encrypted_content":"EqgfCioIARgB","page_age":"PAYLOAD"}]}`}},
	{name: "web_fetch_tool_result document", blocks: []string{`{"type":"web_fetch_tool_result","tool_use_id":"srvtoolu_02","content":{"type":"web_fetch_result","url":"https://example.com/PAYLOAD","retrieved_at":"2025-08-25T10:30:00Z","content":{"type":"document","title":"PAYLOAD","citations":null,"source":{"type":"text","media_type":"text/plain","data":"PAYLOAD"}}}}`}},
	{name: "code_execution_tool_result stdout and stderr", blocks: []string{`{"type":"code_execution_tool_result","tool_use_id":"srvtoolu_03","content":{"type":"code_execution_result","stdout":"PAYLOAD","stderr":"PAYLOAD","return_code":0,"content":[]}}`}},
	{name: "bash_code_execution_tool_result stdout", blocks: []string{`{"type":"bash_code_execution_tool_result","tool_use_id":"srvtoolu_04","content":{"type":"bash_code_execution_result","stdout":"PAYLOAD","stderr":"","return_code":0,"content":[]}}`}},
	{name: "text_editor view content", blocks: []string{`{"type":"text_editor_code_execution_tool_result","tool_use_id":"srvtoolu_05","content":{"type":"text_editor_code_execution_view_result","file_type":"text","content":"PAYLOAD","num_lines":1,"start_line":1,"total_lines":1}}`}},
	{name: "text_editor str_replace lines", blocks: []string{`{"type":"text_editor_code_execution_tool_result","tool_use_id":"srvtoolu_06","content":{"type":"text_editor_code_execution_str_replace_result","lines":["PAYLOAD"],"new_lines":1,"new_start":1,"old_lines":1,"old_start":1}}`}},
	{name: "tool_search error_message", blocks: []string{`{"type":"tool_search_tool_result","tool_use_id":"srvtoolu_07","content":{"type":"tool_search_tool_result_error","error_code":"unavailable","error_message":"PAYLOAD"}}`}},
	{name: "thinking", signed: true, blocks: []string{`{"type":"thinking","thinking":"hmm PAYLOAD","signature":"EqQBCkgIARABGAIiQLz3"}`, `{"type":"text","text":"done"}`}},
}

func blocksWith(blocks []string, payload string) standin.Content {
	enc, _ := json.Marshal(payload)
	esc := string(enc[1 : len(enc)-1])
	var c standin.Content
	for _, b := range blocks {
		c.Blocks = append(c.Blocks, json.RawMessage(strings.ReplaceAll(b, "PAYLOAD", esc)))
	}
	return c
}

// stringsIn returns every string in a JSON document, descending into
// strings that are themselves JSON (tool input as the SDK keeps it).
func stringsIn(t *testing.T, raw []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, it := range x {
				walk(it)
			}
		case map[string]any:
			for k, it := range x {
				out = append(out, k)
				walk(it)
			}
		}
	}
	walk(v)
	return out
}

// received is what the client got: every string of the content, and the
// error when the response was refused.
type received struct {
	strs []string
	err  error
}

func (e *env) receive(t *testing.T, stream bool) received {
	t.Helper()
	ctx := context.Background()
	c := e.sdk()
	if !stream {
		msg, err := c.Messages.New(ctx, userMsg("hi"))
		if err != nil {
			return received{err: err}
		}
		return received{strs: stringsIn(t, []byte(msg.RawJSON()))}
	}
	s := c.Messages.NewStreaming(ctx, userMsg("hi"))
	var acc anthropic.Message
	for s.Next() {
		if err := acc.Accumulate(s.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := s.Err(); err != nil {
		return received{err: err}
	}
	var r received
	for _, b := range acc.Content {
		r.strs = append(r.strs, stringsIn(t, []byte(b.RawJSON()))...)
		if len(b.Input) > 0 {
			r.strs = append(r.strs, stringsIn(t, b.Input)...)
		}
	}
	return r
}

// errText is the message of an API error as the client decodes it (the
// error's string holds the JSON, escaped), else the error's string.
func errText(err error) string {
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		var body struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(ae.RawJSON()), &body) == nil && body.Error.Message != "" {
			return body.Error.Message
		}
	}
	return err.Error()
}

func anyContains(strs []string, sub string) bool {
	for _, s := range strs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestOutputEveryField puts <script> and a secret in every field of every
// response block type, streamed and not, through the official SDK: each
// must come out escaped by html-escape and redacted by secret-redact, and
// a thinking block, which is signed, must be refused instead.
func TestOutputEveryField(t *testing.T) {
	e := start(t, envOpts{client: outputChain, extra: validatorPlugins, si: standin.Options{DeltaSize: 4}})
	payloads := []struct {
		name, payload, want string
	}{
		{"xss", "x " + xssPayload + " y", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"secret", "token " + secretPayload() + " end", "[REDACTED:github]"},
	}
	for _, fc := range everyField {
		for _, p := range payloads {
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/stream=%v", fc.name, p.name, stream), func(t *testing.T) {
					if err := e.si.SetContent(blocksWith(fc.blocks, p.payload)); err != nil {
						t.Fatal(err)
					}
					got := e.receive(t, stream)
					if fc.signed {
						if got.err == nil || !strings.Contains(errText(got.err), "signed thinking block") {
							t.Fatalf("thinking with a modify verdict: err = %v, want a refusal naming the signed thinking block", got.err)
						}
						if strings.Contains(got.err.Error(), xssPayload) || strings.Contains(got.err.Error(), secretPayload()) {
							t.Errorf("the refusal echoes the payload: %v", got.err)
						}
						return
					}
					if got.err != nil {
						t.Fatalf("refused: %v", got.err)
					}
					if anyContains(got.strs, xssPayload) || anyContains(got.strs, secretPayload()) {
						t.Fatalf("the payload reached the client raw: %q", got.strs)
					}
					if !anyContains(got.strs, p.want) {
						t.Fatalf("no %q in what the client received: %q", p.want, got.strs)
					}
				})
			}
		}
	}
}

// TestOutputCanaryEverywhere: the request's canary copied into tool_use
// input, server_tool_use input, thinking or a citation is caught.
func TestOutputCanaryEverywhere(t *testing.T) {
	e := start(t, envOpts{client: "canary = true", si: standin.Options{DeltaSize: 7}})
	leak := "leaked: " + standin.SystemPlaceholder
	cases := []fieldCase{
		{name: "tool_use input", blocks: []string{`{"type":"tool_use","id":"toolu_01","name":"send","input":{"body":"PAYLOAD"}}`}},
		{name: "server_tool_use input", blocks: []string{`{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{"query":"PAYLOAD"}}`}},
		{name: "thinking", blocks: []string{`{"type":"thinking","thinking":"PAYLOAD","signature":"EqQB"}`}},
		{name: "citation", blocks: []string{`{"type":"text","text":"x","citations":[{"type":"char_location","cited_text":"PAYLOAD","document_index":0,"document_title":"d","start_char_index":0,"end_char_index":1}]}`}},
		{name: "web search title", blocks: []string{`{"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[{"type":"web_search_result","title":"PAYLOAD","url":"https://e.com","encrypted_content":"Eq","page_age":null}]}`}},
	}
	for _, fc := range cases {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", fc.name, stream), func(t *testing.T) {
				if err := e.si.SetContent(blocksWith(fc.blocks, leak)); err != nil {
					t.Fatal(err)
				}
				got := e.receive(t, stream)
				if got.err == nil || !strings.Contains(errText(got.err), "canary") {
					t.Fatalf("err = %v, want a canary refusal", got.err)
				}
			})
		}
	}
}

// TestOutputKeysScrubbed: with no output chain at all, the upstream key
// and the caller's own key never reach the client, whatever field carries
// them; where masking would break the data (a signature) the response is
// refused.
func TestOutputKeysScrubbed(t *testing.T) {
	e := start(t, envOpts{si: standin.Options{DeltaSize: 5}})
	for _, tc := range []struct {
		name    string
		blocks  []string
		key     func() string
		refused bool
	}{
		{"upstream key in text", []string{`{"type":"text","text":"key PAYLOAD ok"}`}, func() string { return e.upKey }, false},
		{"client key in tool input", []string{`{"type":"tool_use","id":"toolu_1","name":"n","input":{"k":"PAYLOAD"}}`}, func() string { return e.key }, false},
		{"upstream key in a web search title", []string{`{"type":"web_search_tool_result","tool_use_id":"s","content":[{"type":"web_search_result","title":"PAYLOAD","url":"u","encrypted_content":"Eq","page_age":null}]}`}, func() string { return e.upKey }, false},
		{"upstream key in a signature", []string{`{"type":"thinking","thinking":"t","signature":"PAYLOAD"}`}, func() string { return e.upKey }, true},
		{"upstream key in thinking", []string{`{"type":"thinking","thinking":"PAYLOAD","signature":"Eq"}`}, func() string { return e.upKey }, true},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				if err := e.si.SetContent(blocksWith(tc.blocks, tc.key())); err != nil {
					t.Fatal(err)
				}
				got := e.receive(t, stream)
				if tc.refused {
					if got.err == nil {
						t.Fatalf("not refused")
					}
				} else if got.err != nil {
					t.Fatalf("refused: %v", got.err)
				} else if !anyContains(got.strs, "[SECRET]") {
					t.Errorf("no mask in %q", got.strs)
				}
				if anyContains(got.strs, tc.key()) || (got.err != nil && strings.Contains(got.err.Error(), tc.key())) {
					t.Fatalf("the key reached the client")
				}
			})
		}
	}
	if strings.Contains(e.seen.String(), e.upKey) || strings.Contains(e.seen.String(), e.key) {
		t.Errorf("a key is in a captured response")
	}
}

// TestUpstreamErrorMessages: an upstream error that echoes the key, or
// carries markup, reaches the client scrubbed and judged, over HTTP and
// as a streamed error event.
func TestUpstreamErrorMessages(t *testing.T) {
	e := start(t, envOpts{client: outputChain, extra: validatorPlugins})
	msg := "invalid x-api-key " + e.upKey + " from client " + e.key + " " + xssPayload
	for _, f := range []standin.Fault{
		{Kind: standin.FaultError, Status: 400, Message: msg},
		{Kind: standin.FaultError, Status: 401, Message: msg},
		{Kind: standin.FaultOverloaded, Message: msg},
		{Kind: standin.FaultStreamError, Message: msg},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-%d/stream=%v", f.Kind, f.Status, stream), func(t *testing.T) {
				f.Count = 0 // every request: moat retries an overloaded upstream
				if err := e.si.SetFault(f); err != nil {
					t.Fatal(err)
				}
				defer e.si.ClearFault()
				got := e.receive(t, stream)
				if got.err == nil {
					t.Fatalf("no error")
				}
				s := errText(got.err)
				for _, bad := range []string{e.upKey, e.key, "<script>"} {
					if strings.Contains(s, bad) {
						t.Fatalf("the error carries %q: %s", bad[:8], s)
					}
				}
				if !strings.Contains(s, "&lt;script&gt;") {
					t.Errorf("the message did not go through the output chain: %s", s)
				}
			})
		}
	}
	if strings.Contains(e.seen.String(), e.upKey) {
		t.Errorf("the upstream key is in a captured response")
	}
}

// TestOutputConcurrent runs every field at once, streamed and not, from
// more callers than cores: each response is judged on its own.
func TestOutputConcurrent(t *testing.T) {
	e := start(t, envOpts{client: outputChain + "\nrate = \"100000-M\"", extra: validatorPlugins, si: standin.Options{DeltaSize: 3}})
	var all []string
	for _, fc := range everyField {
		if !fc.signed {
			all = append(all, fc.blocks...)
		}
	}
	if err := e.si.SetContent(blocksWith(all, xssPayload+" "+secretPayload())); err != nil {
		t.Fatal(err)
	}
	const callers, each = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				got := e.receive(t, (g+i)%2 == 0)
				switch {
				case got.err != nil:
					errs <- got.err
				case anyContains(got.strs, xssPayload) || anyContains(got.strs, secretPayload()):
					errs <- errors.New("a payload reached the client raw")
				case !anyContains(got.strs, "&lt;script&gt;") || !anyContains(got.strs, "[REDACTED:github]"):
					errs <- errors.New("a response was not judged")
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUnknownTypesRefusedByName: a block, delta or event type moat does
// not know is refused by name, streamed (an error event) and not (a 502),
// unless upstream.relay_unknown_types names it.
func TestUnknownTypesRefusedByName(t *testing.T) {
	start0 := `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	cases := []struct {
		name    string
		content standin.Content
		want    string
		relay   string
	}{
		{name: "block", content: standin.Content{Blocks: []json.RawMessage{json.RawMessage(`{"type":"mcp_tool_result","tool_use_id":"x","content":"<script>"}`)}}, want: `unknown type "mcp_tool_result"`, relay: "mcp_tool_result"},
		{name: "delta", content: standin.Content{Blocks: []json.RawMessage{json.RawMessage(`{"type":"text","text":"hi"}`)}, Events: []standin.RawEvent{
			{Name: "content_block_start", Data: json.RawMessage(start0)},
			{Name: "content_block_delta", Data: json.RawMessage(`{"type":"content_block_delta","index":0,"delta":{"type":"annotation_delta","note":"<script>"}}`)},
			{Name: "content_block_stop", Data: json.RawMessage(`{"type":"content_block_stop","index":0}`)},
		}}, want: `unknown type "annotation_delta"`, relay: "annotation_delta"},
		{name: "event", content: standin.Content{Blocks: []json.RawMessage{json.RawMessage(`{"type":"text","text":"hi"}`)}, Events: []standin.RawEvent{
			{Name: "annotation", Data: json.RawMessage(`{"type":"annotation","note":"<script>"}`)},
		}}, want: `unknown type "annotation"`, relay: "annotation"},
	}
	for _, relayed := range []bool{false, true} {
		upstream := ""
		if relayed {
			var names []string
			for _, tc := range cases {
				names = append(names, fmt.Sprintf("%q", tc.relay))
			}
			upstream = "relay_unknown_types = [" + strings.Join(names, ", ") + "]"
		}
		e := start(t, envOpts{client: outputChain, extra: validatorPlugins, upstream: upstream})
		for _, tc := range cases {
			for _, stream := range []bool{false, true} {
				if tc.name != "block" && !stream {
					continue // deltas and events exist only in streams
				}
				t.Run(fmt.Sprintf("%s/relayed=%v/stream=%v", tc.name, relayed, stream), func(t *testing.T) {
					if err := e.si.SetContent(tc.content); err != nil {
						t.Fatal(err)
					}
					got := e.receive(t, stream)
					if relayed {
						if got.err != nil {
							t.Fatalf("a relayed type was refused: %v", got.err)
						}
						return
					}
					if got.err == nil || !strings.Contains(errText(got.err), tc.want) {
						t.Fatalf("err = %v, want one naming %s", got.err, tc.want)
					}
					var ae *anthropic.Error
					if !stream && (!errors.As(got.err, &ae) || ae.StatusCode != 502) {
						t.Errorf("non-streamed refusal is not a 502: %v", got.err)
					}
				})
			}
		}
	}
}

// TestDroppedStreamCharged: a stream cut during thinking, tool input or
// citations is charged for what was generated, not only for text deltas.
func TestDroppedStreamCharged(t *testing.T) {
	big := strings.Repeat("word ", 8000) // 40,000 bytes
	input, _ := json.Marshal(map[string]string{"doc": big})
	cases := []struct {
		name  string
		block string
	}{
		{"text", `{"type":"text","text":"` + big + `"}`},
		{"thinking", `{"type":"thinking","thinking":"` + big + `","signature":"EqQB"}`},
		{"tool_use", `{"type":"tool_use","id":"toolu_1","name":"write","input":` + string(input) + `}`},
	}
	e := start(t, envOpts{si: standin.Options{DeltaSize: 2000}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.si.SetContent(standin.Content{Blocks: []json.RawMessage{json.RawMessage(tc.block)}}); err != nil {
				t.Fatal(err)
			}
			// message_start, ping, the block's start, then ten deltas of
			// 2,000 bytes (tool input starts with an empty one).
			after := 13
			if tc.name == "tool_use" {
				after = 14
			}
			if err := e.si.SetFault(standin.Fault{Kind: standin.FaultReset, Count: 1, AfterEvents: after}); err != nil {
				t.Fatal(err)
			}
			e.rawStream(t, "hi")
			lines := e.auditLines()
			var rec struct {
				OutputTokens int64 `json:"output_tokens"`
				Status       int   `json:"status"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
				t.Fatal(err)
			}
			// 20,000 bytes generated: at least 5,000 tokens charged.
			if rec.OutputTokens < 5000 {
				t.Errorf("a stream cut during %s was charged %d output tokens, want at least 5000 (status %d)", tc.name, rec.OutputTokens, rec.Status)
			}
		})
	}
}
