package anthropic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
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

// ErrBareCR is returned for a line holding a carriage return before its
// end: a line break to the client that the reader would not see.
var ErrBareCR = errors.New("sse line holds a bare carriage return")

// EventReader reads server-sent events. Comments and retry/id fields are
// skipped.
type EventReader struct {
	r *bufio.Reader
	// scratch collects an event's data lines; arena holds the data of the
	// events returned, many small events to one allocation.
	scratch, arena []byte
}

// arenaChunk is the size of the arena's allocations.
const arenaChunk = 8 << 10

// keep copies data into the arena and returns the copy, capped so that an
// append to it allocates instead of running into the next event's data.
func (er *EventReader) keep(data []byte) []byte {
	n := len(data)
	if n == 0 {
		return []byte{}
	}
	if cap(er.arena)-len(er.arena) < n {
		if n > arenaChunk/2 {
			return bytes.Clone(data)
		}
		er.arena = make([]byte, 0, arenaChunk)
	}
	start := len(er.arena)
	er.arena = append(er.arena, data...)
	return er.arena[start : start+n : start+n]
}

// readBufs holds the 32 KiB read buffers of event readers no longer
// reachable, for the next stream.
var readBufs sync.Pool

// NewEventReader returns a reader of events from r.
func NewEventReader(r io.Reader) *EventReader {
	br, _ := readBufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(r, 32<<10)
	} else {
		br.Reset(r)
	}
	er := &EventReader{r: br}
	// Only er reads br, and events are copied out of it (Next), so once er
	// is unreachable its buffer can serve another stream: a stream then
	// costs no 32 KiB allocation.
	runtime.AddCleanup(er, func(br *bufio.Reader) {
		br.Reset(nil)
		readBufs.Put(br)
	}, br)
	return er
}

// Next returns the next event, or io.EOF at a clean end between events, or
// io.ErrUnexpectedEOF when the stream stops inside an event. The event's
// Data is memory of its own, never reused by the reader: ParseStreamEvent
// may return strings that share it.
func (er *EventReader) Next() (Event, error) {
	var ev Event
	data := er.scratch[:0]
	hasData := false
	defer func() {
		if cap(data) <= 64<<10 {
			er.scratch = data[:0]
		}
	}()
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
		// One line end: LF or CRLF ("\r\r\n" is a line and an empty
		// line to a client).
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		if bytes.IndexByte(line, '\r') >= 0 {
			// Clients end SSE lines at a lone CR too: read past it, a
			// line would carry a field (an event name, more data) that
			// the client sees and moat does not.
			return Event{}, ErrBareCR
		}
		if len(line) == 0 {
			if !seen {
				if err != nil {
					return Event{}, io.EOF
				}
				continue
			}
			if hasData {
				ev.Data = er.keep(data)
			}
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = eventName(value)
			seen = true
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
			seen = true
		}
		if err != nil {
			// The stream ended without the blank line closing the event.
			return Event{}, io.ErrUnexpectedEOF
		}
	}
}

// eventName returns the event type name, without allocating for the
// Messages API's own.
func eventName(b []byte) string {
	switch string(b) {
	case EventContentBlockDelta:
		return EventContentBlockDelta
	case EventContentBlockStart:
		return EventContentBlockStart
	case EventContentBlockStop:
		return EventContentBlockStop
	case EventMessageStart:
		return EventMessageStart
	case EventMessageDelta:
		return EventMessageDelta
	case EventMessageStop:
		return EventMessageStop
	case EventPing:
		return EventPing
	case EventError:
		return EventError
	}
	return string(b)
}

// Buffered returns the number of bytes read from the stream but not yet
// returned as events: when it is zero, the next Next will block on the
// network, so a relay should flush what it wrote first.
func (er *EventReader) Buffered() int { return er.r.Buffered() }

// EventWriter writes server-sent events. Write encodes an event into the
// writer's buffer, and Flush writes the buffer in one Write and sends it to
// the client; call Flush before waiting for more input, so events that
// arrive together leave in one write and one flush, and a lone event is
// never held back. A buffer past writeThrough is written at once.
type EventWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	buf []byte
	// pooled holds buf between streams (see Release): the pool's pointer,
	// so that giving the buffer back costs no allocation.
	pooled *[]byte
}

// writeThrough is the buffered size past which Write writes the buffer
// without waiting for Flush, so a long burst does not pile up.
const writeThrough = 16 << 10

// writeBufs holds the buffers of released event writers, for the next
// stream: a stream's events then cost no buffer growth.
var writeBufs sync.Pool

// NewEventWriter returns a writer of events to w. Release gives its buffer
// back when the stream is over.
func NewEventWriter(w http.ResponseWriter) *EventWriter {
	p, _ := writeBufs.Get().(*[]byte)
	if p == nil {
		b := make([]byte, 0, 4<<10)
		p = &b
	}
	return &EventWriter{w: w, rc: http.NewResponseController(w), buf: (*p)[:0], pooled: p}
}

// Release hands the writer's buffer to the next stream. The writer must
// not be used after; should it be, it writes into a buffer of its own,
// never the one released. Release on a released writer does nothing.
func (ew *EventWriter) Release() {
	p, b := ew.pooled, ew.buf
	ew.pooled, ew.buf = nil, nil
	if p == nil {
		return
	}
	// b is at most 4*writeThrough: write drops a larger buffer.
	*p = b[:0]
	writeBufs.Put(p)
}

// ErrEventName is returned for an event name holding a line break, which
// would end the event line and start fields the writer did not write.
var ErrEventName = errors.New("sse event name holds a line break")

// checkName refuses an event name holding CR or LF (data is split into
// lines by AppendEvent; a name cannot be).
func checkName(name string) error {
	if strings.ContainsAny(name, "\r\n") {
		return ErrEventName
	}
	return nil
}

// Write buffers one event; an error is a name holding a line break
// (ErrEventName, nothing written) or the failure of a write through.
func (ew *EventWriter) Write(ev Event) error {
	if err := checkName(ev.Name); err != nil {
		return err
	}
	ew.buf = AppendEvent(ew.buf, ev)
	if len(ew.buf) < writeThrough {
		return nil
	}
	return ew.write()
}

// write writes the buffered events.
func (ew *EventWriter) write() error {
	if len(ew.buf) == 0 {
		return nil
	}
	_, err := ew.w.Write(ew.buf)
	if cap(ew.buf) > 4*writeThrough {
		// One very large event: do not keep its buffer for the stream.
		ew.buf = nil
	}
	ew.buf = ew.buf[:0]
	if err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	return nil
}

// Flush writes the buffered events and sends them to the client.
func (ew *EventWriter) Flush() error {
	if err := ew.write(); err != nil {
		return err
	}
	if err := ew.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flushing events: %w", err)
	}
	return nil
}

// WriteEvent encodes one event to w in the Anthropic stream format; a name
// holding a line break is refused (ErrEventName).
func WriteEvent(w io.Writer, ev Event) error {
	if err := checkName(ev.Name); err != nil {
		return err
	}
	_, err := w.Write(AppendEvent(make([]byte, 0, len(ev.Data)+len(ev.Name)+16), ev))
	return err
}

// lineEnd returns the index of the first CR or LF in data, or -1:
// bytes.IndexAny(data, "\r\n") in two vectorized searches.
func lineEnd(data []byte) int {
	i := bytes.IndexByte(data, '\n')
	before := data
	if i >= 0 {
		before = data[:i]
	}
	if j := bytes.IndexByte(before, '\r'); j >= 0 {
		return j
	}
	return i
}

// AppendEvent appends the encoding of one event to b. The name must not
// hold a line break (Write and WriteEvent refuse one).
func AppendEvent(b []byte, ev Event) []byte {
	if ev.Name != "" {
		b = append(b, "event: "...)
		b = append(b, ev.Name...)
		b = append(b, '\n')
	}
	data := ev.Data
	for {
		// A CR is a line end to the client as much as an LF (JSON holds
		// either only as whitespace): each starts a data line of its own.
		i := lineEnd(data)
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n')
}
