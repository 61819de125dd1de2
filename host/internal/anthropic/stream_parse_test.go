package anthropic

import (
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// referenceParseStreamEvent is ParseStreamEvent before the delta fast
// path: the strict decoder on every event.
func referenceParseStreamEvent(data []byte) (StreamEvent, error) {
	var se StreamEvent
	err := jsonv2.Unmarshal(data, &se)
	return se, err
}

var deltaCases = []struct {
	name, data string
	fast       bool // read by the fast path
}{
	{"text", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there"}}`, true},
	{"text index 12", `{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"x"}}`, true},
	{"empty text", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}`, true},
	{"escapes", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"b\\c\n\u00e9\ud83d\ude00"}}`, true},
	{"multibyte", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"héllo 世界 🙂"}}`, true},
	{"thinking", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"let me see"}}`, true},
	{"tool input", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\": 1"}}`, true},
	{"leading zero", `{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}`, false},
	{"negative index", `{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}`, false},
	{"huge index", `{"type":"content_block_delta","index":123456789012345678901,"delta":{"type":"text_delta","text":"x"}}`, false},
	{"invalid utf8", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\xffb\"}}", false},
	{"lone surrogate", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\ud800b"}}`, false},
	{"encoded surrogate", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\xed\xa0\x80b\"}}", false},
	{"control char", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\x01b\"}}", false},
	{"duplicate text", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"b"}}`, false},
	{"member after", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"x":"b"}}`, false},
	{"duplicate type", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"type":"ping"}`, false},
	{"whitespace", `{"type": "content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`, false},
	{"other field", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","thinking":"a"}}`, false},
	{"unterminated", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"}}`, false},
	{"message stop", `{"type":"message_stop"}`, false},
	{"message start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":null}}}`, false},
	{"message start content", `{"type":"message_start","message":{"id":"msg_1","content":[{"type":"text","text":"x"}]}}`, false},
	{"message start null", `{"type":"message_start","message":null,"usage":null}`, false},
	{"message delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`, false},
	{"block start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, false},
	{"block start tool", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}`, false},
	{"block stop", `{"type":"content_block_stop","index":0}`, false},
	{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, false},
	{"ping", `{"type":"ping"}`, false},
	{"float index", `{"type":"content_block_stop","index":1.0}`, false},
	{"exp index", `{"type":"content_block_stop","index":1e1}`, false},
	{"string index", `{"type":"content_block_stop","index":"1"}`, false},
	{"type number", `{"type":5}`, false},
	{"usage string", `{"type":"message_delta","usage":"x"}`, false},
	{"usage float", `{"type":"message_delta","usage":{"output_tokens":1.5}}`, false},
	{"usage huge", `{"type":"message_delta","usage":{"output_tokens":99999999999999999999}}`, false},
	{"case variant", `{"Type":"ping","type":"message_stop"}`, false},
	{"delta array", `{"type":"content_block_delta","index":0,"delta":[]}`, false},
	{"error string", `{"type":"error","error":"x"}`, false},
	{"array", `[1]`, false},
}

// TestParseStreamEventMatchesDecoder: the fast path reads exactly what the
// strict decoder reads, and leaves everything else to it.
func TestParseStreamEventMatchesDecoder(t *testing.T) {
	for _, tc := range deltaCases {
		t.Run(tc.name, func(t *testing.T) {
			var se StreamEvent
			if got := parseDelta([]byte(tc.data), &se); got != tc.fast {
				t.Fatalf("fast path read it: %v, want %v", got, tc.fast)
			}
			checkSameAsDecoder(t, []byte(tc.data))
		})
	}
}

func checkSameAsDecoder(t *testing.T, data []byte) {
	t.Helper()
	got, gerr := ParseStreamEvent(data)
	got.tree = nil
	if got.exact {
		// exact promises that the event holds nothing but the fields read:
		// {"type","index","delta":{"type", one field}}, strictly parsed.
		root, err := parseTree(data)
		if err != nil || root.kind != '{' || len(root.keys) != 3 {
			t.Fatalf("ParseStreamEvent(%q) says exact layout, but the event is %v / %v", data, root, err)
		}
		if d := root.get("delta"); d == nil || d.kind != '{' || len(d.keys) != 2 {
			t.Fatalf("ParseStreamEvent(%q) says exact layout, but its delta is %v", data, d)
		}
		got.exact = false
	}
	want, werr := referenceParseStreamEvent(data)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("ParseStreamEvent(%q) error %v, the decoder's %v", data, gerr, werr)
	}
	if gerr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseStreamEvent(%q) = %+v, the decoder read %+v", data, got, want)
	}
}

// TestFastPathsTaken: the differential tests compare with the decoder the
// code falls back to, so they would pass if the fast paths were never
// taken; this checks that the API's own layouts take them.
func TestFastPathsTaken(t *testing.T) {
	for _, ev := range []Event{TextDelta(3, "héllo \"x\""), ThinkingDelta(0, "let me see"), deltaEvent(2, "input_json_delta", "partial_json", `{"a":1`)} {
		se, err := ParseStreamEvent(ev.Data)
		if err != nil || !se.exact || se.tree != nil {
			t.Errorf("%s: exact %v, tree %v, err %v: want the delta fast path", ev.Data, se.exact, se.tree != nil, err)
		}
	}
	for _, data := range []string{
		`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}`,
	} {
		se, err := ParseStreamEvent([]byte(data))
		if err != nil || se.tree == nil {
			t.Errorf("%s: tree %v, err %v: want the one strict parse reused", data, se.tree != nil, err)
		}
	}
}
