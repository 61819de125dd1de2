package anthropic

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// changeJudge passes everything and upper-cases streamed text when up is set.
type changeJudge struct {
	passJudge
	up bool
}

func (j changeJudge) Feed(_ int, f Field) (string, error) {
	if j.up {
		return strings.ToUpper(f.Text), nil
	}
	return f.Text, nil
}

// A text delta released unchanged leaves as the upstream wrote it (its own
// escapes kept, no second encoding); one the judge changed, or one not in
// the API's exact layout, is built again from what was judged.
func TestTextDeltaRelayedAsWritten(t *testing.T) {
	start := Event{Name: EventContentBlockStart, Data: []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)}
	cases := []struct {
		name, data string
		up         bool
		want       string
	}{
		{"unchanged, exact layout", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"caf\u00e9 \/ ok"}}`, false,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"caf\u00e9 \/ ok"}}`},
		{"changed by the judge", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"caf\u00e9"}}`, true,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"CAFÉ"}}`},
		{"extra member: rebuilt", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi","x":1}}`, false,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewOutputStream(changeJudge{up: tc.up}, nil)
			se, err := ParseStreamEvent(start.Data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Event(start, &se); err != nil {
				t.Fatal(err)
			}
			ev := Event{Name: EventContentBlockDelta, Data: []byte(tc.data)}
			if se, err = ParseStreamEvent(ev.Data); err != nil {
				t.Fatal(err)
			}
			out, err := s.Event(ev, &se)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || out[0].Name != EventContentBlockDelta || string(out[0].Data) != tc.want {
				t.Fatalf("released %q, want %q", out, tc.want)
			}
		})
	}
}

// U+2028 and U+2029 are escaped for JavaScript when moat encodes text; a
// delta carrying them raw is built again rather than sent as written.
func TestTextDeltaLineSeparatorsRebuilt(t *testing.T) {
	start := Event{Name: EventContentBlockStart, Data: []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)}
	s := NewOutputStream(changeJudge{}, nil)
	se, _ := ParseStreamEvent(start.Data)
	if _, err := s.Event(start, &se); err != nil {
		t.Fatal(err)
	}
	ev := Event{Name: EventContentBlockDelta, Data: []byte("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\u2028b\u2029c\"}}")}
	se, err := ParseStreamEvent(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Event(ev, &se)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\u2028b\u2029c"}}`; len(out) != 1 || string(out[0].Data) != want {
		t.Fatalf("released %q, want %q", out, want)
	}
}

// An event whose type is not a type name is refused: the type becomes the
// event line sent on, and a line break in it would start events of its own
// (an unjudged delta, say).
func TestEventTypeMustBeTypeName(t *testing.T) {
	for _, typ := range []string{
		"x\n\nevent: content_block_delta\ndata: {}",
		"y\rdata: z",
		"Ping",
		"",
	} {
		data, _ := json.Marshal(map[string]string{"type": typ})
		// Each is valid JSON: the parse takes it, so the type check must
		// be what refuses it.
		se, err := ParseStreamEvent(data)
		if err != nil {
			t.Fatalf("ParseStreamEvent(%s): %v", data, err)
		}
		// Even named in relay_unknown_types (which passes unknown types
		// on unjudged), such a type is refused.
		if _, err := NewOutputStream(passJudge{}, Relay{typ: true}).Event(Event{Data: data}, &se); err == nil {
			t.Errorf("event of type %q passed", typ)
		}
	}
}

// A lone CR ends a line for SSE clients: the reader refuses it inside a
// line, and the writer never sends one (data lines split there).
func TestBareCarriageReturn(t *testing.T) {
	for _, in := range []string{
		"event: ping\rdata: {\"type\":\"x\"}\ndata: {\"type\":\"ping\"}\n\n",
		// A CR before a CRLF: to a client the event ends there.
		"event: ping\ndata: {\"type\":\"ping\"}\r\r\ndata: {\"type\":\"x\"}\n\n",
	} {
		er := NewEventReader(strings.NewReader(in))
		if _, err := er.Next(); !errors.Is(err, ErrBareCR) {
			t.Fatalf("read %q: %v, want ErrBareCR", in, err)
		}
	}
	er := NewEventReader(strings.NewReader("event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"))
	if ev, err := er.Next(); err != nil || ev.Name != "ping" || string(ev.Data) != `{"type":"ping"}` {
		t.Fatalf("CRLF lines: %+v, %v", ev, err)
	}
	for _, name := range []string{"ping\ndata: {}", "ping\r", "\n"} {
		if err := WriteEvent(io.Discard, Event{Name: name, Data: []byte("{}")}); !errors.Is(err, ErrEventName) {
			t.Errorf("WriteEvent(name %q): %v, want ErrEventName", name, err)
		}
		ew := NewEventWriter(httptest.NewRecorder())
		if err := ew.Write(Event{Name: name, Data: []byte("{}")}); !errors.Is(err, ErrEventName) || len(ew.buf) != 0 {
			t.Errorf("EventWriter.Write(name %q): %v, %d bytes buffered", name, err, len(ew.buf))
		}
		ew.Release()
	}
	got := string(AppendEvent(nil, Event{Name: "ping", Data: []byte("{\r\"type\":\r\n\"ping\"}")}))
	if want := "event: ping\ndata: {\ndata: \"type\":\ndata: \"ping\"}\n\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}
