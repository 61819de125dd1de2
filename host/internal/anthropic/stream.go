package anthropic

import (
	"strconv"

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
func ParseStreamEvent(data []byte) (StreamEvent, error) {
	var se StreamEvent
	err := jsonv2.Unmarshal(data, &se)
	return se, err
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

// ErrorEvent builds an SSE error event of type typ.
func ErrorEvent(typ, message string) Event {
	return Event{Name: EventError, Data: EncodeError(typ, message, "")}
}

// TextBlockStart builds a content_block_start event for an empty text block.
func TextBlockStart(index int) Event {
	b := make([]byte, 0, 96)
	b = append(b, `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	return Event{Name: EventContentBlockStart, Data: b}
}
