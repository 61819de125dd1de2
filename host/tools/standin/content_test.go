package standin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestSetContentSDK: a content reply reaches the official SDK the same
// streamed and not, for every kind of block the stand-in streams
// differently (text with citations, thinking, tool input, whole blocks).
func TestSetContentSDK(t *testing.T) {
	s := startServer(t, standin.Options{DeltaSize: 4})
	c := newSDK(t, s)
	blocks := []string{
		`{"type":"thinking","thinking":"let me <think>","signature":"EqQBCkgI"}`,
		`{"type":"text","text":"it <works>","citations":[{"type":"char_location","cited_text":"works","document_index":0,"document_title":"Doc","start_char_index":0,"end_char_index":5,"file_id":null}]}`,
		`{"type":"tool_use","id":"toolu_01","name":"run","input":{"cmd":"ls -la","args":["a",{"b":1}]}}`,
		`{"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[{"type":"web_search_result","title":"T","url":"https://e.com","encrypted_content":"Eq","page_age":null}]}`,
	}
	var content standin.Content
	for _, b := range blocks {
		content.Blocks = append(content.Blocks, json.RawMessage(b))
	}
	if err := s.SetContent(content); err != nil {
		t.Fatal(err)
	}
	msg, err := c.Messages.New(context.Background(), userParams("hi"))
	if err != nil {
		t.Fatal(err)
	}
	stream := c.Messages.NewStreaming(context.Background(), userParams("hi"))
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != len(blocks) || len(acc.Content) != len(blocks) {
		t.Fatalf("blocks: %d non-streamed, %d streamed, want %d", len(msg.Content), len(acc.Content), len(blocks))
	}
	for i := range blocks {
		a, b := msg.Content[i], acc.Content[i]
		if a.Type != b.Type || a.Text != b.Text || a.Thinking != b.Thinking || a.Signature != b.Signature ||
			len(a.Citations) != len(b.Citations) || !jsonSame(t, a.Input, b.Input) {
			t.Errorf("block %d differs:\nnon-streamed %s\nstreamed     %s", i, a.RawJSON(), b.RawJSON())
		}
	}
	if acc.Content[0].Thinking != "let me <think>" || !strings.Contains(string(acc.Content[2].Input), `"ls -la"`) {
		t.Errorf("streamed content wrong: %+v", acc.Content)
	}
	// A placeholder is filled with the request's system prompt.
	if err := s.SetContent(standin.Content{Blocks: []json.RawMessage{json.RawMessage(`{"type":"tool_use","id":"t","name":"n","input":{"q":"` + standin.SystemPlaceholder + `"}}`)}}); err != nil {
		t.Fatal(err)
	}
	p := userParams("hi")
	p.System = []anthropic.TextBlockParam{{Text: `be "brief"`}}
	msg, err = c.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(msg.Content[0].Input); got != `{"q":"be \"brief\""}` {
		t.Errorf("input = %s", got)
	}
}

func jsonSame(t *testing.T, a, b []byte) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
