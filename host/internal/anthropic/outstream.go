package anthropic

import (
	"strconv"

	"github.com/moat-gateway/moat/host/internal/jsonstr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// StreamJudge is an OutputJudge that also judges text streamed in deltas.
type StreamJudge interface {
	OutputJudge
	// Feed judges the next piece of block index's streamed text (a text
	// or thinking block) and returns what may be released now.
	Feed(index int, f Field) (string, error)
	// Flush returns the rest of block index's streamed text at its end.
	Flush(index int, f Field) (string, error)
}

// OutputStream judges a Messages event stream event by event: it is the
// streamed half of the model in output.go. Text and thinking deltas go to
// StreamJudge.Feed; tool input (input_json_delta) is held per block until
// content_block_stop, judged as JSON and released as one delta; citations
// and blocks that arrive whole (server tool results) are judged as they
// come. A block, delta or event type it does not know is refused with an
// *UnknownTypeError, unless Relay names it.
type OutputStream struct {
	judge StreamJudge
	relay Relay
	// MaxBuffered bounds the tool input held for one block (0: 64 MiB).
	MaxBuffered int
	// Generated counts the bytes of generated content the upstream sent
	// (text, thinking, tool input JSON, cited text), so that a stream
	// cut short is charged for what was generated.
	Generated int64
	blocks    map[int]*streamBlock
	// fed backs the one event feed returns, so a judged delta costs no
	// slice.
	fed [1]Event
}

type streamBlock struct {
	typ       string
	path      string // blockPath of its streamed field, once computed
	relayed   bool
	json      []byte
	sawJSON   bool
	citations int
}

// NewOutputStream returns a stream judge.
func NewOutputStream(j StreamJudge, relay Relay) *OutputStream {
	return &OutputStream{judge: j, relay: relay, blocks: map[int]*streamBlock{}}
}

// Event judges one upstream event and returns the events to send in its
// place: none, the event itself, or rebuilt events; the slice is valid
// until the next call. se is the event's
// data as ParseStreamEvent read it. Error and message_stop events are the
// caller's and are returned unchanged.
func (s *OutputStream) Event(ev Event, se *StreamEvent) ([]Event, error) {
	if ev.Name != "" && ev.Name != se.Type {
		return nil, malformed("", "event %s carries data of type %s", safeName(ev.Name), safeName(se.Type))
	}
	if !typeName.match(se.Type) {
		// The type becomes the event line sent on: one that is not a type
		// name (a line break in it) could start events of its own.
		return nil, malformed("type", "event type %s is not a type name", safeName(se.Type))
	}
	switch se.Type {
	case EventPing:
		return []Event{{Name: EventPing, Data: []byte(`{"type":"ping"}`)}}, nil
	case EventMessageStop, EventError:
		return []Event{ev}, nil
	case EventContentBlockDelta:
		if b := s.blocks[se.Index]; b != nil && !b.relayed {
			switch {
			case se.Delta.Type == "text_delta" && b.typ == "text":
				s.Generated += int64(len(se.Delta.Text))
				var orig *Event
				if se.exact && ev.Name == EventContentBlockDelta {
					orig = &ev
				}
				return s.feed(se.Index, abi.KindText, "text", se.Delta.Text, TextDelta, orig)
			case se.Delta.Type == "thinking_delta" && b.typ == "thinking":
				s.Generated += int64(len(se.Delta.Thinking))
				return s.feed(se.Index, abi.KindThinking, "thinking", se.Delta.Thinking, ThinkingDelta, nil)
			case se.Delta.Type == "input_json_delta" && (b.typ == "tool_use" || b.typ == "server_tool_use"):
				s.Generated += int64(len(se.Delta.PartialJSON))
				b.sawJSON = true
				b.json = append(b.json, se.Delta.PartialJSON...)
				if limit := s.maxBuffered(); len(b.json) > limit {
					return nil, malformed(blockPath(se.Index, "input"), "tool input exceeds %d bytes", limit)
				}
				return nil, nil
			}
		}
	}
	v := se.tree
	if v == nil {
		var err error
		if v, err = parseTree(ev.Data); err != nil {
			return nil, malformed("", "event data is not strict JSON (duplicate keys, invalid UTF-8 or bad syntax)")
		}
	}
	se.tree = nil // judged in place below: one use
	if v.kind != '{' {
		return nil, malformed("", "event data is not an object")
	}
	switch se.Type {
	case EventMessageStart:
		m := v.get("message")
		if m == nil || m.kind != '{' {
			return nil, malformed("message", "message_start has no message")
		}
		if c := m.get("content"); c != nil && !(c.kind == '[' && len(c.vals) == 0) && c.kind != 'n' {
			// The API starts messages empty; content here would skip
			// the block-by-block judging.
			return nil, malformed("message.content", "message_start carried content")
		}
		if err := judgeEnvelope(s.judge, v, ""); err != nil {
			return nil, err
		}
		return one(se.Type, v)
	case EventMessageDelta:
		if err := judgeEnvelope(s.judge, v, ""); err != nil {
			return nil, err
		}
		return one(se.Type, v)
	case EventContentBlockStart:
		return s.start(v, se.Index)
	case EventContentBlockDelta:
		return s.delta(v, se.Index)
	case EventContentBlockStop:
		return s.stop(v, se.Index)
	}
	// An unknown event. One that carries nothing but its type passes.
	if len(v.keys) == 1 && v.keys[0] == "type" {
		return one(se.Type, v)
	}
	if !s.relay[se.Type] {
		return nil, &UnknownTypeError{What: "event", Name: se.Type}
	}
	if err := (&walker{j: s.judge}).checkAll(v, ""); err != nil {
		return nil, err
	}
	return one(se.Type, v)
}

func (s *OutputStream) maxBuffered() int {
	if s.MaxBuffered > 0 {
		return s.MaxBuffered
	}
	return 64 << 20
}

func blockPath(index int, field string) string {
	return join("content."+strconv.Itoa(index), field)
}

// feed passes streamed text to the judge and builds the delta to release.
// orig, when set, is the upstream's delta in the API's exact layout: when
// the judge releases exactly its text, it is sent as it came (the same
// JSON, without building it again).
func (s *OutputStream) feed(index int, kind, field, text string, build func(int, string) Event, orig *Event) ([]Event, error) {
	path := ""
	if b := s.blocks[index]; b != nil {
		if b.path == "" {
			b.path = blockPath(index, field)
		}
		path = b.path
	} else {
		path = blockPath(index, field)
	}
	out, err := s.judge.Feed(index, Field{Kind: kind, Path: path, Text: text})
	if err != nil || out == "" {
		return nil, err
	}
	if orig != nil && out == text && !jsonstr.HasLineSeparator(text) {
		// (TextDelta escapes U+2028 and U+2029 for JavaScript; the
		// upstream's bytes may not.)
		s.fed[0] = *orig
	} else {
		s.fed[0] = build(index, out)
	}
	return s.fed[:], nil
}

func (s *OutputStream) start(v *node, index int) ([]Event, error) {
	if _, open := s.blocks[index]; open {
		return nil, malformed(blockPath(index, ""), "block started twice")
	}
	cb := v.get("content_block")
	if cb == nil || cb.kind != '{' {
		return nil, malformed(blockPath(index, ""), "content_block_start has no content_block")
	}
	typ := cb.stringAt("type")
	b := &streamBlock{typ: typ}
	if !KnownBlockType(typ) {
		if !s.relay[typ] {
			return nil, &UnknownTypeError{What: "content block", Name: typ}
		}
		b.relayed = true
		if err := (&walker{j: s.judge}).checkAll(v, ""); err != nil {
			return nil, err
		}
		s.blocks[index] = b
		return one(EventContentBlockStart, v)
	}
	// The event is rebuilt from what was judged: other fields are dropped.
	v = blockEvent(EventContentBlockStart, index, "content_block", cb)
	// Text in a text or thinking block's start streams like a delta; the
	// client sees an empty start.
	var streamed, kind string
	var build func(int, string) Event
	switch typ {
	case "text":
		streamed, kind, build = "text", abi.KindText, TextDelta
	case "thinking":
		streamed, kind, build = "thinking", abi.KindThinking, ThinkingDelta
	}
	var initial string
	if streamed != "" {
		if f := cb.get(streamed); f != nil {
			if f.kind != '"' {
				return nil, malformed(blockPath(index, streamed), "not a string")
			}
			initial = f.str
			if initial != "" {
				f.setString("")
			}
		}
	}
	if err := judgeBlock(s.judge, s.relay, cb, blockPath(index, "")); err != nil {
		return nil, err
	}
	s.blocks[index] = b
	evs, err := one(EventContentBlockStart, v)
	if err != nil {
		return nil, err
	}
	if initial != "" {
		s.Generated += int64(len(initial))
		more, err := s.feed(index, kind, streamed, initial, build, nil)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

func (s *OutputStream) delta(v *node, index int) ([]Event, error) {
	b := s.blocks[index]
	if b == nil {
		return nil, malformed(blockPath(index, ""), "delta for a block that is not open")
	}
	d := v.get("delta")
	if d == nil || d.kind != '{' {
		return nil, malformed(blockPath(index, ""), "content_block_delta has no delta")
	}
	dt := d.stringAt("type")
	if b.relayed || (!KnownDeltaType(dt) && s.relay[dt]) {
		if err := (&walker{j: s.judge}).checkAll(v, ""); err != nil {
			return nil, err
		}
		return one(EventContentBlockDelta, v)
	}
	if !KnownDeltaType(dt) {
		return nil, &UnknownTypeError{What: "delta", Name: dt}
	}
	// The event is rebuilt from the delta's type and its judged field:
	// other fields are dropped.
	switch {
	case dt == "signature_delta" && b.typ == "thinking":
		sig := d.get("signature")
		if sig == nil {
			return nil, malformed(blockPath(index, "signature"), "signature_delta has no signature")
		}
		if err := (&walker{j: s.judge}).opaque(sig, blockPath(index, "signature")); err != nil {
			return nil, err
		}
		return one(EventContentBlockDelta, blockEvent(EventContentBlockDelta, index, "delta", deltaObject(dt, "signature", sig)))
	case dt == "citations_delta" && b.typ == "text":
		c := d.get("citation")
		if c == nil {
			return nil, malformed(blockPath(index, "citations"), "citations_delta has no citation")
		}
		s.Generated += int64(len(c.stringAt("cited_text")))
		if err := judgeCitation(s.judge, c, blockPath(index, "citations."+strconv.Itoa(b.citations))); err != nil {
			return nil, err
		}
		b.citations++
		return one(EventContentBlockDelta, blockEvent(EventContentBlockDelta, index, "delta", deltaObject(dt, "citation", c)))
	}
	// text, thinking and input_json deltas of the right block were
	// handled in Event; here they belong to another block type.
	return nil, malformed(blockPath(index, ""), "%s in a %s block", dt, b.typ) // both known names
}

func (s *OutputStream) stop(v *node, index int) ([]Event, error) {
	b := s.blocks[index]
	if b == nil {
		return nil, malformed(blockPath(index, ""), "stop for a block that is not open")
	}
	delete(s.blocks, index)
	if !b.relayed {
		v = blockEvent(EventContentBlockStop, index, "", nil)
	}
	stops, err := one(EventContentBlockStop, v)
	if err != nil {
		return nil, err
	}
	stop := stops[0]
	if b.relayed {
		return []Event{stop}, nil
	}
	var evs []Event
	switch b.typ {
	case "text", "thinking":
		kind, build := abi.KindText, TextDelta
		if b.typ == "thinking" {
			kind, build = abi.KindThinking, ThinkingDelta
		}
		out, err := s.judge.Flush(index, Field{Kind: kind, Path: blockPath(index, b.typ)})
		if err != nil {
			return nil, err
		}
		if out != "" {
			evs = append(evs, build(index, out))
		}
	case "tool_use", "server_tool_use":
		if b.sawJSON && len(b.json) > 0 {
			out, err := s.toolInput(b.json, index)
			if err != nil {
				return nil, err
			}
			evs = append(evs, InputJSONDelta(index, out))
		}
	}
	return append(evs, stop), nil
}

// toolInput judges buffered tool input JSON. Input that does not parse (a
// stream cut by max_tokens) is judged as one string and released only
// unchanged.
func (s *OutputStream) toolInput(raw []byte, index int) (string, error) {
	path := blockPath(index, "input")
	v, err := parseTree(raw)
	if err != nil {
		out, err := s.judge.Judge(Field{Kind: abi.KindToolInput, Path: path, Text: string(raw)})
		if err != nil {
			return "", err
		}
		if out != string(raw) {
			return "", malformed(path, "tool input that is not valid JSON cannot be modified")
		}
		return out, nil
	}
	if err := judgeToolInput(s.judge, v, path); err != nil {
		return "", err
	}
	b, err := encodeNode(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ThinkingDelta builds a content_block_delta event carrying thinking.
func ThinkingDelta(index int, thinking string) Event {
	return deltaEvent(index, "thinking_delta", "thinking", thinking)
}

// InputJSONDelta builds a content_block_delta event carrying tool input.
func InputJSONDelta(index int, partial string) Event {
	return deltaEvent(index, "input_json_delta", "partial_json", partial)
}

func deltaEvent(index int, typ, field, s string) Event {
	b := make([]byte, 0, len(s)+96)
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = appendJSONString(b, s)
	b = append(b, `}}`...)
	return Event{Name: EventContentBlockDelta, Data: b}
}

// blockEvent builds a content block event: its type, index and, unless key
// is "", one more field.
func blockEvent(typ string, index int, key string, val *node) *node {
	if key == "" {
		return objectNode([]string{"type", "index"}, stringNode(typ), numberNode(index))
	}
	return objectNode([]string{"type", "index", key}, stringNode(typ), numberNode(index), val)
}

// deltaObject builds a delta: its type and one field.
func deltaObject(typ, key string, val *node) *node {
	return objectNode([]string{"type", key}, stringNode(typ), val)
}

// one encodes a judged event.
func one(name string, v *node) ([]Event, error) {
	b, err := encodeNode(v)
	if err != nil {
		return nil, err
	}
	return []Event{{Name: name, Data: b}}, nil
}
