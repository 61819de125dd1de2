package anthropic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Event is one server-sent event.
type Event struct {
	// Name is the "event:" field ("" when absent).
	Name string
	// Data is the "data:" field; several data lines are joined by "\n".
	Data []byte
}

// MaxEventBytes bounds one event; a longer one is a malformed stream.
const MaxEventBytes = 8 << 20

// ErrEventTooLarge reports an event over MaxEventBytes.
var ErrEventTooLarge = errors.New("sse event too large")

// EventReader reads server-sent events. Comments and retry/id fields are
// skipped.
type EventReader struct {
	r *bufio.Reader
}

// NewEventReader returns a reader of events from r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// Next returns the next event, or io.EOF at a clean end between events, or
// io.ErrUnexpectedEOF when the stream stops inside an event.
func (er *EventReader) Next() (Event, error) {
	var ev Event
	var data []byte
	seen := false
	size := 0
	for {
		line, err := er.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: collect it whole.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(buf) > MaxEventBytes {
					return Event{}, ErrEventTooLarge
				}
				line, err = er.r.ReadSlice('\n')
				buf = append(buf, line...)
			}
			line = buf
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			if errors.Is(err, io.EOF) {
				if seen {
					return Event{}, io.ErrUnexpectedEOF
				}
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		size += len(line)
		if size > MaxEventBytes {
			return Event{}, ErrEventTooLarge
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if !seen {
				if err != nil {
					return Event{}, io.EOF
				}
				continue
			}
			ev.Data = data
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
			seen = true
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if data == nil {
				data = []byte{}
			}
			seen = true
		}
		if err != nil {
			// The stream ended without the blank line closing the event.
			return Event{}, io.ErrUnexpectedEOF
		}
	}
}

// EventWriter writes server-sent events and flushes each one.
type EventWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

// NewEventWriter returns a writer that flushes after every event when w
// supports it.
func NewEventWriter(w http.ResponseWriter) *EventWriter {
	return &EventWriter{w: w, rc: http.NewResponseController(w)}
}

// Write writes one event and flushes it.
func (ew *EventWriter) Write(ev Event) error {
	if err := WriteEvent(ew.w, ev); err != nil {
		return err
	}
	if err := ew.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flushing event: %w", err)
	}
	return nil
}

// WriteEvent encodes one event to w in the Anthropic stream format.
func WriteEvent(w io.Writer, ev Event) error {
	var buf bytes.Buffer
	buf.Grow(len(ev.Data) + len(ev.Name) + 16)
	if ev.Name != "" {
		buf.WriteString("event: ")
		buf.WriteString(ev.Name)
		buf.WriteByte('\n')
	}
	for _, line := range bytes.Split(ev.Data, []byte("\n")) {
		buf.WriteString("data: ")
		buf.Write(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
