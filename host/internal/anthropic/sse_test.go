package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, s string) ([]Event, error) {
	t.Helper()
	er := NewEventReader(strings.NewReader(s))
	var evs []Event
	for {
		ev, err := er.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return evs, nil
			}
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestEventReader(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []Event
		wantErr error
	}{
		{"one", "event: ping\ndata: {\"type\":\"ping\"}\n\n", []Event{{Name: "ping", Data: []byte(`{"type":"ping"}`)}}, nil},
		{"crlf and comment", ": hi\r\nevent: a\r\ndata: 1\r\n\r\n", []Event{{Name: "a", Data: []byte("1")}}, nil},
		{"multi data", "data: a\ndata: b\n\n", []Event{{Data: []byte("a\nb")}}, nil},
		{"no space", "event:x\ndata:y\n\n", []Event{{Name: "x", Data: []byte("y")}}, nil},
		{"blank lines", "\n\nevent: x\ndata: y\n\n\n", []Event{{Name: "x", Data: []byte("y")}}, nil},
		{"truncated", "event: x\ndata: y\n", nil, io.ErrUnexpectedEOF},
		{"truncated no newline", "event: x\ndata: y", nil, io.ErrUnexpectedEOF},
		{"long line", "data: " + strings.Repeat("z", 100000) + "\n\n", []Event{{Data: []byte(strings.Repeat("z", 100000))}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || !bytes.Equal(got[i].Data, tc.want[i].Data) {
					t.Errorf("event %d = %q %q", i, got[i].Name, got[i].Data)
				}
			}
		})
	}
}

// FuzzSSE: the reader never panics, and re-emitted events parse back to
// the same events.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\"}\n\n"))
	f.Add([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\\n\"}}\n\n"))
	f.Add([]byte("data: a\ndata: b\n\n: comment\n\nevent: x\n\n"))
	f.Add([]byte("event: x\r\ndata: y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		er := NewEventReader(bytes.NewReader(in))
		var evs []Event
		for {
			ev, err := er.Next()
			if err != nil {
				break
			}
			evs = append(evs, ev)
		}
		var buf bytes.Buffer
		for _, ev := range evs {
			if strings.ContainsAny(ev.Name, "\r\n") {
				return
			}
			if bytes.ContainsRune(ev.Data, '\r') {
				return
			}
			if err := WriteEvent(&buf, ev); err != nil {
				t.Fatal(err)
			}
		}
		er2 := NewEventReader(&buf)
		for i, want := range evs {
			got, err := er2.Next()
			if err != nil {
				t.Fatalf("event %d: re-read failed: %v", i, err)
			}
			if got.Name != want.Name || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("event %d: %q %q != %q %q", i, got.Name, got.Data, want.Name, want.Data)
			}
		}
	})
}

func TestTextDeltaParses(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" and \\ and \n newline", "<script>", "日本語 🌍"} {
		ev := TextDelta(3, s)
		se, err := ParseStreamEvent(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		if se.Type != EventContentBlockDelta || se.Index != 3 || se.Delta.Text != s || se.Delta.Type != "text_delta" {
			t.Fatalf("round trip of %q: %+v", s, se)
		}
	}
}

// FuzzParseStreamEvent: decoding any event data never panics and reads
// what the strict decoder alone reads (the delta fast path included).
func FuzzParseStreamEvent(f *testing.F) {
	for _, tc := range deltaCases {
		f.Add([]byte(tc.data))
	}
	f.Add([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`))
	f.Add([]byte(`{"type":"message_start","message":{"id":"msg_1","content":[],"usage":{"input_tokens":3}}}`))
	f.Add([]byte(`{"type":"message_delta","usage":{"output_tokens":7}}`))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsDecoder(t, data)
	})
}

// TestEventReaderBuffersReused: streams read one after another, with
// collections in between returning earlier readers' buffers to the pool,
// each read exactly their own events, and the events of earlier streams
// stay as read (they do not share a reused buffer).
func TestEventReaderBuffersReused(t *testing.T) {
	var kept [][]byte
	var wants []string
	for i := range 50 {
		want := fmt.Sprintf("stream %d %s", i, strings.Repeat(string(rune('a'+i%26)), i*97))
		in := "event: a\ndata: " + want + "\n\nevent: b\ndata: second\n\n"
		er := NewEventReader(strings.NewReader(in))
		ev, err := er.Next()
		if err != nil || ev.Name != "a" || string(ev.Data) != want {
			t.Fatalf("stream %d: first event %q %q %v", i, ev.Name, ev.Data, err)
		}
		ev2, err := er.Next()
		if err != nil || ev2.Name != "b" || string(ev2.Data) != "second" {
			t.Fatalf("stream %d: second event %q %q %v", i, ev2.Name, ev2.Data, err)
		}
		if _, err := er.Next(); err != io.EOF {
			t.Fatalf("stream %d: end %v", i, err)
		}
		kept, wants = append(kept, ev.Data), append(wants, want)
		if i%5 == 0 {
			runtime.GC()
			time.Sleep(time.Millisecond) // the cleanups run
		}
	}
	for i := range kept {
		if string(kept[i]) != wants[i] {
			t.Fatalf("stream %d's event changed after later streams: %.40q", i, kept[i])
		}
	}
}

// FuzzLineEnd checks lineEnd against bytes.IndexAny.
func FuzzLineEnd(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "\r", "ab\r\ncd", "ab\ncd\r", "x\r", "{\"a\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := lineEnd(data), bytes.IndexAny(data, "\r\n"); got != want {
			t.Fatalf("lineEnd(%q) = %d, bytes.IndexAny gives %d", data, got, want)
		}
	})
}
