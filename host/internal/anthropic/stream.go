package anthropic

import (
	"bytes"
	"strconv"
	"unicode/utf8"
	"unsafe"

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

	// tree is the strict parse ParseStreamEvent read the event from, for
	// OutputStream.Event (nil when it was read another way).
	tree *node
	// exact is set when the event is a delta in the API's exact layout
	// (parseDelta): nothing in it but what the fields above hold, so a
	// delta released unchanged can be sent as the upstream wrote it.
	exact bool
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
// to the decoder. The delta's string may share data's memory (no copy for
// plain ASCII text): data must not be changed while the event is in use
// (EventReader.Next returns each event's data in memory of its own).
func ParseStreamEvent(data []byte) (StreamEvent, error) {
	var se StreamEvent
	if parseDelta(data, &se) {
		return se, nil
	}
	return parseEvent(data)
}

// parseEvent is ParseStreamEvent for events other than deltas (apart, so
// that the deltas' StreamEvent stays off the heap).
func parseEvent(data []byte) (StreamEvent, error) {
	var se StreamEvent
	// One strict parse serves this and the output model; the fields are
	// read from it when they hold what the decoder expects, else the
	// decoder reads them (and refuses what it refuses).
	if root, err := parseTree(data); err == nil && root.kind == '{' && fillEvent(root, &se) {
		se.tree = root
		return se, nil
	}
	se = StreamEvent{}
	err := jsonv2.Unmarshal(data, &se)
	return se, err
}

// fillEvent sets se's fields from a parsed event the way json v2's
// Unmarshal does (names matched exactly, other members ignored, null
// leaving the zero value), and reports false at the first value whose
// reading it does not mirror (a wrong kind, a non-integer index, tool
// content in message_start): the caller then asks the decoder.
func fillEvent(root *node, se *StreamEvent) bool {
	for i, k := range root.keys {
		v := root.vals[i]
		if v.kind == 'n' {
			continue
		}
		ok := true
		switch k {
		case "type":
			ok = setStr(v, &se.Type)
		case "index":
			ok = setInt(v, &se.Index)
		case "delta":
			ok = v.kind == '{' && eachMember(v, func(k string, v *node) bool {
				switch k {
				case "type":
					return setStr(v, &se.Delta.Type)
				case "text":
					return setStr(v, &se.Delta.Text)
				case "thinking":
					return setStr(v, &se.Delta.Thinking)
				case "partial_json":
					return setStr(v, &se.Delta.PartialJSON)
				}
				return true
			})
		case "content_block":
			ok = v.kind == '{' && eachMember(v, func(k string, v *node) bool {
				switch k {
				case "type":
					return setStr(v, &se.ContentBlock.Type)
				case "text":
					return setStr(v, &se.ContentBlock.Text)
				}
				return true
			})
		case "message":
			if v.kind != '{' {
				return false
			}
			se.Message = &struct {
				ID      string           `json:"id"`
				Usage   *Usage           `json:"usage"`
				Content []jsontext.Value `json:"content"`
			}{}
			m := se.Message
			ok = eachMember(v, func(k string, v *node) bool {
				switch k {
				case "id":
					return setStr(v, &m.ID)
				case "usage":
					return setUsage(v, &m.Usage)
				case "content":
					if v.kind == '[' && len(v.vals) == 0 {
						m.Content = []jsontext.Value{}
						return true
					}
					return v.kind == 'n'
				}
				return true
			})
		case "usage":
			ok = setUsage(v, &se.Usage)
		case "error":
			if v.kind != '{' {
				return false
			}
			se.Error = &ErrorDetail{}
			ok = eachMember(v, func(k string, v *node) bool {
				switch k {
				case "type":
					return setStr(v, &se.Error.Type)
				case "message":
					return setStr(v, &se.Error.Message)
				}
				return true
			})
		}
		if !ok {
			return false
		}
	}
	return true
}

// eachMember calls fn for the members of object v that are not null (a
// null leaves the zero value) until fn returns false.
func eachMember(v *node, fn func(string, *node) bool) bool {
	for i, k := range v.keys {
		if v.vals[i].kind != 'n' && !fn(k, v.vals[i]) {
			return false
		}
	}
	return true
}

func setStr(v *node, dst *string) bool {
	switch v.kind {
	case '"':
		*dst = v.str
	case 'n':
		*dst = ""
	default:
		return false
	}
	return true
}

// setInt reads an integer written without fraction or exponent.
func setInt(v *node, dst *int) bool {
	if v.kind != '0' {
		return v.kind == 'n'
	}
	n, err := strconv.ParseInt(string(v.raw), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*dst = int(n)
	return true
}

func setInt64(v *node, dst *int64) bool {
	if v.kind != '0' {
		return v.kind == 'n'
	}
	n, err := strconv.ParseInt(string(v.raw), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func setUsage(v *node, dst **Usage) bool {
	if v.kind == 'n' {
		*dst = nil
		return true
	}
	if v.kind != '{' {
		return false
	}
	u := &Usage{}
	*dst = u
	return eachMember(v, func(k string, v *node) bool {
		switch k {
		case "input_tokens":
			return setInt64(v, &u.InputTokens)
		case "output_tokens":
			return setInt64(v, &u.OutputTokens)
		case "cache_creation_input_tokens":
			return setInt64(v, &u.CacheCreationInputTokens)
		case "cache_read_input_tokens":
			return setInt64(v, &u.CacheReadInputTokens)
		}
		return true
	})
}

// deltaPrefix starts a content_block_delta in the API's layout.
const deltaPrefix = `{"type":"content_block_delta","index":`

// deltaFields are the delta types read by parseDelta: the bytes between
// the index and the string, and the delta's type (the field set is
// Delta.Text, Delta.Thinking and Delta.PartialJSON, in this order).
var deltaFields = [...]struct{ mid, typ string }{
	{`,"delta":{"type":"text_delta","text":`, "text_delta"},
	{`,"delta":{"type":"thinking_delta","thinking":`, "thinking_delta"},
	{`,"delta":{"type":"input_json_delta","partial_json":`, "input_json_delta"},
}

// parseDelta reads data when it is exactly deltaPrefix, an index, one of
// deltaFields' middles, a JSON string and "}}", and reports whether it
// did. It only fills se when the decoder would read the same values (it
// reports false for what it does not read, never an error: the decoder
// then decides).
func parseDelta(data []byte, se *StreamEvent) bool {
	rest, ok := cutPrefix(data, deltaPrefix)
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
		lit, ok := cutPrefix(rest, df.mid)
		if !ok {
			continue
		}
		lit = lit[:len(lit)-2] // the string literal, quotes included
		s, ok := unquoteStrict(lit)
		if !ok {
			return false
		}
		se.Type, se.Index, se.exact = EventContentBlockDelta, index, true
		se.Delta.Type = df.typ
		switch i {
		case 0:
			se.Delta.Text = s
		case 1:
			se.Delta.Thinking = s
		default:
			se.Delta.PartialJSON = s
		}
		return true
	}
	return false
}

// cutPrefix is bytes.CutPrefix for a string prefix, without converting it.
func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// unquoteStrict decodes lit, which must be exactly one JSON string
// literal, refusing what the strict decoder refuses (invalid UTF-8,
// unpaired surrogate escapes, control characters, bytes after the
// closing quote). A literal without escapes or non-ASCII bytes is
// returned as a string sharing lit's memory (see ParseStreamEvent).
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
		if len(body) == 0 {
			return "", true
		}
		return unsafe.String(&body[0], len(body)), true
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
	// Stopped is set by message_stop.
	Stopped bool
}

// Observe updates the accumulated usage from one parsed event.
func (s *StreamUsage) Observe(se *StreamEvent) {
	switch se.Type {
	case EventMessageStart:
		if se.Message != nil {
			s.Usage.merge(se.Message.Usage)
		}
	case EventMessageDelta:
		s.Usage.merge(se.Usage)
	case EventMessageStop:
		s.Stopped = true
	}
}

// TextDelta builds a content_block_delta event carrying text.
func TextDelta(index int, text string) Event { return deltaEvent(index, "text_delta", "text", text) }

// ErrorEvent builds an SSE error event of type typ.
func ErrorEvent(typ, message string) Event {
	return Event{Name: EventError, Data: EncodeError(typ, message, "")}
}
