package anthropic

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// passJudge releases everything unchanged: the cost measured is the output
// model's own.
type passJudge struct{}

func (passJudge) Judge(f Field) (string, error)       { return f.Text, nil }
func (passJudge) Check(Field) error                   { return nil }
func (passJudge) Feed(_ int, f Field) (string, error) { return f.Text, nil }
func (passJudge) Flush(int, Field) (string, error)    { return "", nil }

// BenchmarkStreamTextDelta is the per-delta cost of the output model on
// the hot path; BenchmarkStreamTextDeltaBaseline parses the same event
// only, as moat did before (compare the two).
func BenchmarkStreamTextDelta(b *testing.B) {
	st := NewOutputStream(passJudge{}, nil)
	start := Event{Name: EventContentBlockStart, Data: []byte(evTextStart)}
	se, _ := ParseStreamEvent(start.Data)
	if _, err := st.Event(start, &se); err != nil {
		b.Fatal(err)
	}
	ev := TextDelta(0, "Hello there, this is a delta.")
	b.ReportAllocs()
	for b.Loop() {
		se, err := ParseStreamEvent(ev.Data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Event(ev, &se); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamTextDeltaBaseline(b *testing.B) {
	ev := TextDelta(0, "Hello there, this is a delta.")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStreamEvent(ev.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseJudge judges a response holding every block type;
// BenchmarkResponseJudgeBaseline decodes its usage only, as moat did
// with no output chain.
func BenchmarkResponseJudge(b *testing.B) {
	body, err := os.ReadFile("testdata/output/message.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeResponse(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Judge(passJudge{}, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponseJudgeBaseline(b *testing.B) {
	body, err := os.ReadFile("testdata/output/message.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseJudgeTwoParses is BenchmarkResponseJudge as moat did it
// before issue 18's one parse: the head decoded by encoding/json's rules
// (goccy after a validation pass), then the strict parse in Judge. The
// "text" cases use a 1.3 KB one-block reply, like the benchmark's.
func BenchmarkResponseJudgeTwoParses(b *testing.B) {
	for _, name := range []string{"every-block", "text"} {
		body := benchResponse(b, name)
		for _, two := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/two_parses=%v", name, two), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					var r *Response
					var err error
					if two {
						r, err = decodeHead(body, nil)
					} else {
						r, err = DecodeResponse(body)
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := r.Judge(passJudge{}, nil); err != nil {
						b.Fatal(err)
					}
					if _, err := r.Encode(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func benchResponse(b *testing.B, name string) []byte {
	if name == "every-block" {
		body, err := os.ReadFile("testdata/output/message.json")
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	text := strings.Repeat("The Riverside Community Garden had its busiest spring yet: forty-two households. ", 16)
	body, err := json.Marshal(map[string]any{
		"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
		"content":     []map[string]any{{"type": "text", "text": text}},
		"stop_reason": "end_turn", "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": 1100, "output_tokens": 300, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkStreamWhole runs a whole text stream like the benchmark's
// (message_start, a text block of 80 deltas, message_delta) through
// ParseStreamEvent and the output model; reference=true reads every event
// as before issue 18 (the decoder for every event, then the output
// model's own parse), in the same run.
func BenchmarkStreamWhole(b *testing.B) {
	evs := []Event{
		{Name: EventMessageStart, Data: []byte(`{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1100,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`)},
		{Name: EventContentBlockStart, Data: []byte(evTextStart)},
	}
	for range 80 {
		evs = append(evs, TextDelta(0, " busiest spring yet"))
	}
	evs = append(evs,
		Event{Name: EventContentBlockStop, Data: []byte(`{"type":"content_block_stop","index":0}`)},
		Event{Name: EventMessageDelta, Data: []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":300}}`)})
	for _, ref := range []bool{false, true} {
		b.Run(fmt.Sprintf("reference=%v", ref), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st := NewOutputStream(passJudge{}, nil)
				for _, ev := range evs {
					parse := ParseStreamEvent
					if ref {
						parse = referenceParseStreamEvent
					}
					se, err := parse(ev.Data)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := st.Event(ev, &se); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
