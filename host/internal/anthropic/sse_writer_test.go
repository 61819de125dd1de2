package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recWriter is a ResponseWriter that records its Write and Flush calls.
type recWriter struct {
	body    bytes.Buffer
	writes  int
	flushes int
	err     error
}

func (w *recWriter) Header() http.Header { return http.Header{} }
func (w *recWriter) WriteHeader(int)     {}
func (w *recWriter) Flush()              { w.flushes++ }

func (w *recWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes++
	return w.body.Write(p)
}

// TestEventWriterCoalesces checks that events written between two
// flushes leave in one Write and one Flush, in order and encoded as
// AppendEvent encodes them; that a buffer past writeThrough is written
// without waiting; and that a failed write surfaces.
func TestEventWriterCoalesces(t *testing.T) {
	small := []Event{
		{Name: EventContentBlockDelta, Data: []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`)},
		{Name: EventPing, Data: []byte(`{"type":"ping"}`)},
		{Data: []byte("two\nlines")},
	}
	big := Event{Name: "big", Data: []byte(strings.Repeat("x", writeThrough))}
	tests := []struct {
		name       string
		events     []Event
		wantWrites int // before the Flush
	}{
		{"one event", small[:1], 0},
		{"a burst", small, 0},
		{"past writeThrough", append([]Event{small[0], big}, small[1:]...), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rw := &recWriter{}
			ew := NewEventWriter(rw)
			var want []byte
			for _, ev := range tc.events {
				if err := ew.Write(ev); err != nil {
					t.Fatal(err)
				}
				want = AppendEvent(want, ev)
			}
			if rw.writes != tc.wantWrites || rw.flushes != 0 {
				t.Fatalf("before Flush: %d writes, %d flushes; want %d, 0", rw.writes, rw.flushes, tc.wantWrites)
			}
			if err := ew.Flush(); err != nil {
				t.Fatal(err)
			}
			if rw.writes != tc.wantWrites+1 || rw.flushes != 1 {
				t.Fatalf("after Flush: %d writes, %d flushes; want %d, 1", rw.writes, rw.flushes, tc.wantWrites+1)
			}
			if !bytes.Equal(rw.body.Bytes(), want) {
				t.Fatalf("wrote %q, want %q", rw.body.Bytes(), want)
			}
			// Nothing more buffered: another Flush writes nothing.
			if err := ew.Flush(); err != nil || rw.writes != tc.wantWrites+1 {
				t.Fatalf("second Flush: err %v, %d writes", err, rw.writes)
			}
		})
	}
	t.Run("write error", func(t *testing.T) {
		gone := errors.New("connection reset")
		rw := &recWriter{err: gone}
		ew := NewEventWriter(rw)
		if err := ew.Write(small[0]); err != nil {
			t.Fatalf("Write = %v before Flush", err)
		}
		if err := ew.Flush(); !errors.Is(err, gone) {
			t.Fatalf("Flush = %v, want %v", err, gone)
		}
	})
}

// TestEventWriterNoAllocs checks that writing and flushing an event costs
// no allocation once the buffer has grown.
func TestEventWriterNoAllocs(t *testing.T) {
	rw := &recWriter{}
	ew := NewEventWriter(rw)
	ev := TextDelta(0, "some text")
	allocs := testing.AllocsPerRun(100, func() {
		rw.body.Reset()
		_ = ew.Write(ev)
		_ = ew.Write(ev)
		_ = ew.Flush()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and flush, want 0", allocs)
	}
}

// repeatReader repeats one encoded event forever.
type repeatReader struct {
	ev  []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.ev[r.off:])
		n += c
		r.off = (r.off + c) % len(r.ev)
	}
	return n, nil
}

// TestEventReaderAllocs checks that reading an event of the Messages API
// allocates nothing for its name and, amortised, nothing for its data
// (events share 8 KiB allocations); an unknown name is copied.
func TestEventReaderAllocs(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want float64
	}{
		{"content_block_delta", TextDelta(0, "a few words"), 0},
		{"message_stop", Event{Name: EventMessageStop, Data: []byte(`{"type":"message_stop"}`)}, 0},
		{"unknown name", Event{Name: "made_up_event", Data: []byte(`{"type":"made_up_event"}`)}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			er := NewEventReader(&repeatReader{ev: AppendEvent(nil, tc.ev)})
			var got Event
			allocs := testing.AllocsPerRun(200, func() {
				var err error
				if got, err = er.Next(); err != nil {
					t.Fatal(err)
				}
			})
			if got.Name != tc.ev.Name || !bytes.Equal(got.Data, tc.ev.Data) {
				t.Fatalf("read %q %q", got.Name, got.Data)
			}
			if allocs != tc.want {
				t.Fatalf("%v allocations per event, want %v", allocs, tc.want)
			}
		})
	}
}

// TestEventReaderDataOwned: an event's data stays as read while later
// events are read, and appending to it does not reach the next event's.
func TestEventReaderDataOwned(t *testing.T) {
	var stream []byte
	var want []string
	for i := range 2000 {
		data := fmt.Sprintf(`{"type":"ping","n":%d,"pad":%q}`, i, strings.Repeat("x", i%300))
		want = append(want, data)
		stream = AppendEvent(stream, Event{Name: "ping", Data: []byte(data)})
	}
	stream = AppendEvent(stream, Event{Name: "big", Data: bytes.Repeat([]byte("y"), 9000)})
	er := NewEventReader(bytes.NewReader(stream))
	var got []Event
	for {
		ev, err := er.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
		if len(got) > 1 {
			// A consumer appending to the previous event's data.
			prev := &got[len(got)-2]
			prev.Data = append(prev.Data, "!!"...)
			prev.Data = prev.Data[:len(prev.Data)-2]
		}
	}
	if len(got) != len(want)+1 {
		t.Fatalf("read %d events, want %d", len(got), len(want)+1)
	}
	for i, w := range want {
		if string(got[i].Data) != w {
			t.Fatalf("event %d: data %q, want %q", i, got[i].Data, w)
		}
	}
	if len(got[len(want)].Data) != 9000 {
		t.Fatalf("big event: %d bytes", len(got[len(want)].Data))
	}
}

// TestEventWritersPooledConcurrently: more streams than cores write,
// flush and release their writers at once; each client gets exactly its
// own events (a buffer handed to the next stream too early would mix
// them), and the reader on the other side reads them back.
func TestEventWritersPooledConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 16 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev *EventWriter // the last round's, released
			for round := range 20 {
				rec := httptest.NewRecorder()
				ew := NewEventWriter(rec)
				var want []byte
				for i := range 50 {
					ev := TextDelta(0, fmt.Sprintf("stream %d round %d delta %d %s", g, round, i, strings.Repeat("x", i*7)))
					want = AppendEvent(want, ev)
					if err := ew.Write(ev); err != nil {
						t.Error(err)
						return
					}
					if i == 1 && prev != nil {
						// A late write to the released writer (a caller
						// breaking the contract) while this one, which
						// may hold its old buffer, has an event buffered.
						_ = prev.Write(TextDelta(0, strings.Repeat("late ", 40)))
					}
					if i%7 == 0 {
						if err := ew.Flush(); err != nil {
							t.Error(err)
							return
						}
					}
				}
				if err := ew.Flush(); err != nil {
					t.Error(err)
					return
				}
				ew.Release()
				prev = ew
				if !bytes.Equal(rec.Body.Bytes(), want) {
					t.Errorf("stream %d round %d: the client got other bytes than written", g, round)
					return
				}
				er := NewEventReader(bytes.NewReader(rec.Body.Bytes()))
				for i := range 50 {
					ev, err := er.Next()
					if err != nil || !bytes.Contains(ev.Data, []byte(fmt.Sprintf("stream %d round %d delta %d ", g, round, i))) {
						t.Errorf("stream %d round %d event %d: %q %v", g, round, i, ev.Data, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
