package anthropic

import (
	"os"
	"strings"
	"testing"
)

var headCases = []string{
	`{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":5}}`,
	`{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":5,"cache_creation_input_tokens":7,"cache_read_input_tokens":9,"server_tool_use":{"web_search_requests":1}}}`,
	`{"id":"msg_1","usage":null}`, `{"id":null}`, `{"id":5,"usage":{}}`, `{}`,
	`{"ID":"x","id":"y"}`, `{"Id":"x"}`, `{"usage":{"Input_Tokens":4}}`, `{"usage":{"input_tokens":4,"INPUT_TOKENS":5}}`,
	`{"usage":{"input_tokens":1.5}}`, `{"usage":{"input_tokens":1e3}}`, `{"usage":{"input_tokens":"3"}}`, `{"usage":{"input_tokens":null}}`,
	`{"usage":{"input_tokens":99999999999999999999}}`, `{"usage":[1]}`, `{"usage":"x"}`, `{"usage":{"ınput_tokens":4}}`,
	`{"\u0069d":"esc"}`, `{"id":"a","id":"b"}`, "{\"id\":\"a\xffb\"}", `[]`, `"x"`, `{"usage":{"input_tokens":-2}}`,
	`{"usage":{"\u212aey":1,"input_tokens":2}}`,
}

// TestDecodeResponseHeadMatchesEncodingJSON: the id and usage read from
// the strict parse are what encoding/json reads (the previous decode).
func TestDecodeResponseHeadMatchesEncodingJSON(t *testing.T) {
	for _, c := range headCases {
		t.Run(c, func(t *testing.T) { checkSameHead(t, []byte(c)) })
	}
	b, err := os.ReadFile("testdata/output/message.json")
	if err != nil {
		t.Fatal(err)
	}
	checkSameHead(t, b)
}

func checkSameHead(t *testing.T, body []byte) {
	t.Helper()
	got, gerr := DecodeResponse(body)
	want, werr := decodeHead(body, nil)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("DecodeResponse(%q) error %v, encoding/json's %v", body, gerr, werr)
	}
	if gerr == nil && (got.ID != want.ID || got.Usage != want.Usage) {
		t.Fatalf("DecodeResponse(%q) = %q %+v, encoding/json read %q %+v", body, got.ID, got.Usage, want.ID, want.Usage)
	}
}

// FuzzDecodeResponseHead compares the two reads on any bytes.
func FuzzDecodeResponseHead(f *testing.F) {
	for _, c := range headCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSameHead(t, body) })
}

// TestStopReason: the stop reason a caller may pass on unjudged is only
// ever a type name, and only from a body the strict decoder read.
func TestStopReason(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{`"end_turn"`, "end_turn"}, {`"tool_use"`, "tool_use"}, {`null`, ""}, {`""`, ""},
		{`"<img src=x onerror=alert(1)>"`, ""}, {`"end turn"`, ""}, {`"a\nb"`, ""}, {`7`, ""},
		{`"` + strings.Repeat("x", 200) + `"`, ""},
	} {
		body := `{"id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":` + tc.value + `,"usage":{"input_tokens":1,"output_tokens":1}}`
		r, err := DecodeResponse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got := r.StopReason(); got != tc.want {
			t.Errorf("stop_reason %s: %q, want %q", tc.value, got, tc.want)
		}
	}
	// Duplicate keys: encoding/json would read the last one.
	r, err := DecodeResponse([]byte(`{"stop_reason":"end_turn","stop_reason":"tool_use","content":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.StopReason(); got != "" {
		t.Errorf("not strict JSON: stop reason %q, want none", got)
	}
}

// TestResponseText: a route's text is the text blocks of the strict parse,
// and a body it cannot read that way is an error, not an empty text.
func TestResponseText(t *testing.T) {
	for _, tc := range []struct {
		name, content, want, err string
	}{
		{"text blocks joined", `[{"type":"text","text":"a"},{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"b"}]`, "ab", ""},
		{"no content", ``, "", ""},
		{"empty", `[]`, "", ""},
		{"escaped", `[{"type":"text","text":"\u003cb\u003e"}]`, "<b>", ""},
		{"content not an array", `"hi"`, "", "content: not an array"},
		{"block not an object", `["hi"]`, "", "content.0: a content block is not an object"},
		{"text not a string", `[{"type":"text","text":7}]`, "", "content.0.text: not a string"},
		{"duplicate text", `[{"type":"text","text":"a","text":"b"}]`, "", "not strict JSON"},
		{"case variant is another member", `[{"type":"text","Text":"x","text":"a"}]`, "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"id":"msg_1","type":"message","role":"assistant","stop_reason":"end_turn"`
			if tc.content != "" {
				body += `,"content":` + tc.content
			}
			body += `}`
			r, err := DecodeResponse([]byte(body))
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			got, err := r.Text()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Text() = %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Text() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
