package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Content is a reply made of content blocks of any type, for tests of what
// a client receives beyond text: thinking, tool use, citations, server tool
// results.
type Content struct {
	// Blocks are the response's content blocks in the API's wire format:
	// the objects of a non-streaming response's "content" array.
	Blocks []json.RawMessage
	// Events, when set, replace the content events a streamed reply
	// derives from Blocks (see [Server.SetContent]): they are sent as they
	// are between message_start and message_delta, for shapes no real
	// block streams as (unknown delta or event types).
	Events []RawEvent
}

// RawEvent is one server-sent event: its name and its data.
type RawEvent struct {
	Name string
	Data json.RawMessage
}

// SetContent makes every following Messages request answer c (until
// SetReply, SetReplies or another SetContent). A non-streaming request gets
// the blocks as its "content". A streamed one gets them as the API streams
// them, block by block: a text block starts empty, then one citations_delta
// per citation and its text in text_delta pieces; a thinking block starts
// with empty thinking and signature, then thinking_delta pieces and one
// signature_delta; tool_use and server_tool_use start with input {} and
// send their input as input_json_delta pieces; every other block type
// (server tool results, redacted_thinking, unknown types) arrives whole in
// its content_block_start. Pieces are Options.DeltaSize bytes (about
// three words when zero).
func (s *Server) SetContent(c Content) error {
	p, err := s.buildContent(c)
	if err != nil {
		return err
	}
	for _, b := range c.Blocks {
		if bytes.Contains(b, []byte(SystemPlaceholder)) {
			p.template = &c
		}
	}
	s.replyMu.Lock()
	s.replies = []*preparedReply{p}
	s.replyMu.Unlock()
	return nil
}

// SystemPlaceholder, inside any string of a block given to SetContent, is
// replaced by the request's system prompt: a model leaking its
// instructions into tool input or thinking, for tests of the canary.
const SystemPlaceholder = "MOAT_SYSTEM_PROMPT"

// withSystem fills SystemPlaceholder in a content reply.
func (s *Server) withSystem(p *preparedReply, system string) *preparedReply {
	if p.template == nil {
		return p
	}
	esc := marshal(system)
	esc = esc[1 : len(esc)-1] // the string's JSON text without quotes
	c := Content{Events: p.template.Events}
	for _, b := range p.template.Blocks {
		c.Blocks = append(c.Blocks, bytes.ReplaceAll(b, []byte(SystemPlaceholder), esc))
	}
	out, err := s.buildContent(c)
	if err != nil {
		return p
	}
	return out
}

func (s *Server) buildContent(c Content) (*preparedReply, error) {
	var text bytes.Buffer
	frames := [][]byte{}
	for i, raw := range c.Blocks {
		var b map[string]json.RawMessage
		if err := json.Unmarshal(raw, &b); err != nil || b == nil {
			return nil, fmt.Errorf("content block %d is not a JSON object", i)
		}
		var typ string
		if err := json.Unmarshal(b["type"], &typ); err != nil || typ == "" {
			return nil, fmt.Errorf("content block %d has no type", i)
		}
		fs, generated, err := s.blockFrames(i, typ, raw, b)
		if err != nil {
			return nil, fmt.Errorf("content block %d (%s): %w", i, typ, err)
		}
		frames = append(frames, fs...)
		text.WriteString(generated)
	}
	if c.Events != nil {
		frames = frames[:0]
		for _, ev := range c.Events {
			frames = append(frames, sseFrame(ev.Name, ev.Data))
		}
	}
	blocks := make([]json.RawMessage, len(c.Blocks))
	copy(blocks, c.Blocks)
	return &preparedReply{text: text.String(), content: blocks, blockFrames: frames}, nil
}

// The events and deltas, with their fields in the API's order.
type (
	wireBlockStart struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	wireBlockDelta struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta any    `json:"delta"`
	}
	wireBlockStop struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	wireThinkingStart struct {
		Type      string `json:"type"`
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	}
	wireThinkingDelta struct {
		Type     string `json:"type"`
		Thinking string `json:"thinking"`
	}
	wireSignatureDelta struct {
		Type      string `json:"type"`
		Signature string `json:"signature"`
	}
	wireJSONDelta struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	}
	wireCitationsDelta struct {
		Type     string          `json:"type"`
		Citation json.RawMessage `json:"citation"`
	}
)

func startOf(index int, block any) []byte {
	return sseFrame("content_block_start", marshal(wireBlockStart{Type: "content_block_start", Index: index, ContentBlock: block}))
}

func deltaOf(index int, delta any) []byte {
	return sseFrame("content_block_delta", marshal(wireBlockDelta{Type: "content_block_delta", Index: index, Delta: delta}))
}

func stringField(b map[string]json.RawMessage, key string) (string, error) {
	raw, ok := b[key]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
}

// blockFrames derives the stream events of one block and returns the text
// it generates (for the usage estimate).
func (s *Server) blockFrames(i int, typ string, raw json.RawMessage, b map[string]json.RawMessage) ([][]byte, string, error) {
	var frames [][]byte
	stop := sseFrame("content_block_stop", marshal(wireBlockStop{Type: "content_block_stop", Index: i}))
	switch typ {
	case "text":
		text, err := stringField(b, "text")
		if err != nil {
			return nil, "", err
		}
		var cites []json.RawMessage
		if raw, ok := b["citations"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &cites); err != nil {
				return nil, "", fmt.Errorf("citations is not an array")
			}
		}
		frames = append(frames, startOf(i, wireText{Type: "text", Text: ""}))
		for _, c := range cites {
			frames = append(frames, deltaOf(i, wireCitationsDelta{Type: "citations_delta", Citation: c}))
		}
		for _, piece := range splitDeltas(text, s.opts.DeltaSize) {
			frames = append(frames, deltaOf(i, wireText{Type: "text_delta", Text: piece}))
		}
		return append(frames, stop), text, nil
	case "thinking":
		thinking, err := stringField(b, "thinking")
		if err != nil {
			return nil, "", err
		}
		sig, err := stringField(b, "signature")
		if err != nil {
			return nil, "", err
		}
		frames = append(frames, startOf(i, wireThinkingStart{Type: "thinking"}))
		for _, piece := range splitDeltas(thinking, s.opts.DeltaSize) {
			frames = append(frames, deltaOf(i, wireThinkingDelta{Type: "thinking_delta", Thinking: piece}))
		}
		frames = append(frames, deltaOf(i, wireSignatureDelta{Type: "signature_delta", Signature: sig}))
		return append(frames, stop), thinking, nil
	case "tool_use", "server_tool_use":
		input := b["input"]
		var compact bytes.Buffer
		if err := json.Compact(&compact, input); err != nil {
			return nil, "", fmt.Errorf("input is not JSON")
		}
		start := map[string]json.RawMessage{}
		for k, v := range b {
			start[k] = v
		}
		start["input"] = json.RawMessage(`{}`)
		frames = append(frames, startOf(i, start))
		// The API's first input delta is often empty.
		frames = append(frames, deltaOf(i, wireJSONDelta{Type: "input_json_delta"}))
		for _, piece := range splitDeltas(compact.String(), s.opts.DeltaSize) {
			frames = append(frames, deltaOf(i, wireJSONDelta{Type: "input_json_delta", PartialJSON: piece}))
		}
		return append(frames, stop), compact.String(), nil
	}
	frames = append(frames, startOf(i, raw))
	return append(frames, stop), "", nil
}
