package anthropic

import (
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
