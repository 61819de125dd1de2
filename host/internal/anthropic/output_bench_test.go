package anthropic

import (
	"os"
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
