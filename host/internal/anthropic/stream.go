package anthropic

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Stream event names of the Messages API.
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// StreamEvent is the part of a stream event's data moat reads.
type StreamEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		PartialJSON string `json:"partial_json"`
	} `json:"delta"`
	ContentBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content_block"`
	Message *struct {
		ID      string           `json:"id"`
		Usage   *Usage           `json:"usage"`
		Content []jsontext.Value `json:"content"`
	} `json:"message"`
	Usage *Usage       `json:"usage"`
	Error *ErrorDetail `json:"error"`
}

// ParseStreamEvent decodes an event's data with the strict decoder
// (go-json-experiment: duplicate member names and invalid UTF-8 are
// errors), so it reads an event as the output model's parse does.
//
// A text, thinking or tool-input delta in the API's own layout (no
// whitespace, members in the API's order) is read without a decoder: its
// fixed bytes are compared and its one string is checked as strictly as
// the decoder would (valid UTF-8, no control characters, escapes through
// jsontext); these are nearly every event of a stream. Anything else goes
// to the decoder.
func ParseStreamEvent(data []byte) (StreamEvent, error) {
	var se StreamEvent
	if parseDelta(data, &se) {
		return se, nil
	}
	err := jsonv2.Unmarshal(data, &se)
	return se, err
}

// deltaPrefix starts a content_block_delta in the API's layout.
const deltaPrefix = `{"type":"content_block_delta","index":`

// deltaFields are the delta types read by parseDelta: the bytes between
// the index and the string, the delta's type, and the field of
// StreamEvent.Delta it sets.
var deltaFields = [...]struct {
	mid, typ string
	set      func(se *StreamEvent, s string)
}{
	{`,"delta":{"type":"text_delta","text":`, "text_delta", func(se *StreamEvent, s string) { se.Delta.Text = s }},
	{`,"delta":{"type":"thinking_delta","thinking":`, "thinking_delta", func(se *StreamEvent, s string) { se.Delta.Thinking = s }},
	{`,"delta":{"type":"input_json_delta","partial_json":`, "input_json_delta", func(se *StreamEvent, s string) { se.Delta.PartialJSON = s }},
}

// parseDelta reads data when it is exactly deltaPrefix, an index, one of
// deltaFields' middles, a JSON string and "}}", and reports whether it
// did. It only fills se when the decoder would read the same values (it
// reports false for what it does not read, never an error: the decoder
// then decides).
func parseDelta(data []byte, se *StreamEvent) bool {
	rest, ok := bytes.CutPrefix(data, []byte(deltaPrefix))
	if !ok || !bytes.HasSuffix(rest, []byte(`"}}`)) {
		return false
	}
	// The index: digits without a leading zero, small enough for an int.
	n := 0
	for n < len(rest) && n < 9 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || (n > 1 && rest[0] == '0') {
		return false
	}
	index := 0
	for _, c := range rest[:n] {
		index = index*10 + int(c-'0')
	}
	rest = rest[n:]
	for i := range deltaFields {
		df := &deltaFields[i]
		lit, ok := bytes.CutPrefix(rest, []byte(df.mid))
		if !ok {
			continue
		}
		lit = lit[:len(lit)-2] // the string literal, quotes included
		s, ok := unquoteStrict(lit)
		if !ok {
			return false
		}
		se.Type, se.Index = EventContentBlockDelta, index
		se.Delta.Type = df.typ
		df.set(se, s)
		return true
	}
	return false
}

// unquoteStrict decodes lit, which must be exactly one JSON string
// literal, refusing what the strict decoder refuses (invalid UTF-8,
// unpaired surrogate escapes, control characters, bytes after the
// closing quote).
func unquoteStrict(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	plain := true
	for _, c := range body {
		if c < ' ' || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(body), true
	}
	b, err := jsontext.AppendUnquote(nil, lit)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// StreamUsage accumulates usage across a stream's events.
type StreamUsage struct {
	Usage Usage
	// MessageID is the id from message_start.
	MessageID string
	// Stopped is set by message_stop.
	Stopped bool
}

// Observe updates the accumulated usage from one parsed event.
func (s *StreamUsage) Observe(se *StreamEvent) {
	switch se.Type {
	case EventMessageStart:
		if se.Message != nil {
			s.MessageID = se.Message.ID
			s.Usage.merge(se.Message.Usage)
		}
	case EventMessageDelta:
		s.Usage.merge(se.Usage)
	case EventMessageStop:
		s.Stopped = true
	}
}

// TextDelta builds a content_block_delta event carrying text.
func TextDelta(index int, text string) Event {
	b := make([]byte, 0, len(text)+96)
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"delta":{"type":"text_delta","text":`...)
	b = appendJSONString(b, text)
	b = append(b, `}}`...)
	return Event{Name: EventContentBlockDelta, Data: b}
}

// ErrorEvent builds an SSE error event.
func ErrorEvent(e *Error) Event { return Event{Name: EventError, Data: e.EventBody()} }

// TextBlockStart builds a content_block_start event for an empty text block.
func TextBlockStart(index int) Event {
	b := make([]byte, 0, 96)
	b = append(b, `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	return Event{Name: EventContentBlockStart, Data: b}
}
