package jsonschema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

const personSchema = `{"schema":{"type":"object","required":["name","tags"],"additionalProperties":false,
 "properties":{"name":{"type":"string","minLength":1},"age":{"type":"integer","minimum":0},
 "tags":{"type":"array","items":{"type":"string"}}}}}`

func TestOutput(t *testing.T) {
	tests := []struct {
		name, cfg, text string
		action          abi.Action
		reason          string
	}{
		{"valid", personSchema, `{"name":"Ada","age":36,"tags":["math"]}`, abi.Allow, ""},
		{"fenced", personSchema, "```json\n{\"name\":\"Ada\",\"tags\":[]}\n```", abi.Allow, ""},
		{"fence no lang", personSchema, "  ```\n{\"name\":\"Ada\",\"tags\":[]}\n```  ", abi.Allow, ""},
		{"schema as string", `{"schema":"{\"type\":\"array\"}"}`, `[1,2]`, abi.Allow, ""},
		{"wrong item type", personSchema, `{"name":"Ada","tags":["a",2]}`, abi.Reject, `at "/tags/1"`},
		{"missing required", personSchema, `{"name":"Ada"}`, abi.Reject, `at "/": missing property 'tags'`},
		{"extra property", personSchema, `{"name":"Ada","tags":[],"admin":true}`, abi.Reject, `at "/"`},
		{"negative age", personSchema, `{"name":"Ada","tags":[],"age":-1}`, abi.Reject, `at "/age"`},
		{"not json", personSchema, `Sure! Here is the JSON: {"name":"Ada"}`, abi.Reject, "output is not JSON"},
		{"trailing garbage", personSchema, `{"name":"Ada","tags":[]} extra`, abi.Reject, "output is not JSON"},
		{"other fence", personSchema, "```python\nprint(1)\n```", abi.Reject, "output is not JSON"},
		{"no schema", `{}`, `{}`, abi.Reject, `"schema" is required`},
		{"bad schema", `{"schema":{"type":"nope"}}`, `{}`, abi.Reject, "compiling schema"},
		{"schema not json", `{"schema":"{"}`, `{}`, abi.Reject, "parsing schema"},
		{"external ref refused", `{"schema":{"$ref":"file:///etc/passwd"}}`, `{}`, abi.Reject, "external references are disabled"},
		{"remote ref refused", `{"schema":{"$ref":"https://example.com/s.json"}}`, `{}`, abi.Reject, "external references are disabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Output(abi.Request{Phase: abi.PhaseOutput, Text: tc.text, Config: []byte(tc.cfg)})
			if v.Action != tc.action || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("got %s %q, want %s containing %q", v.Action, v.Reason, tc.action, tc.reason)
			}
		})
	}
}

func TestRelativeFileRefRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"type":"string"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `{"schema":{"$ref":"` + filepath.ToSlash(filepath.Join(dir, "s.json")) + `"}}`
	if v := Output(abi.Request{Text: `"x"`, Config: []byte(cfg)}); v.Action != abi.Reject {
		t.Fatalf("a schema read a local file: %+v", v)
	}
}

func FuzzUnfence(f *testing.F) {
	for _, s := range []string{"```json\n{}\n```", "```", "``````", " ```\n[1]\n``` ", "{}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := Unfence(s)
		if len(u) > len(s) {
			t.Fatalf("grew: %q -> %q", s, u)
		}
		if !strings.Contains(s, u) {
			t.Fatalf("%q is not a part of %q", u, s)
		}
		Output(abi.Request{Text: s, Config: []byte(personSchema)}) // must not panic
	})
}

func BenchmarkOutput4K(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"name":"Ada Lovelace","age":36,"tags":[`)
	for i := 0; sb.Len() < 4000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"analytical engine notes and bernoulli numbers"`)
	}
	sb.WriteString(`]}`)
	r := abi.Request{Text: sb.String(), Config: []byte(personSchema)}
	b.ReportAllocs()
	for b.Loop() {
		if v := Output(r); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}

// TestOnlyTheAnswerIsJSON: the schema applies to the text of text blocks
// (or a text without a kind); other strings of a response are allowed.
func TestOnlyTheAnswerIsJSON(t *testing.T) {
	cases := []struct {
		kind, path string
		judged     bool
	}{
		{"", "", true},
		{abi.KindText, "content.0.text", true},
		{abi.KindText, "", true},
		{abi.KindText, "stop_details.explanation", false},
		{abi.KindToolInput, "content.1.input.query", false},
		{abi.KindThinking, "content.0.thinking", false},
		{abi.KindCitation, "content.0.citations.0.cited_text", false},
		{abi.KindServerToolResult, "content.2.content.0.title", false},
		{abi.KindError, "error.message", false},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.path, func(t *testing.T) {
			v := Output(abi.Request{Phase: abi.PhaseOutput, Text: "not json", Config: []byte(`{"schema":{}}`), Context: abi.Context{Kind: tc.kind, Path: tc.path}})
			if got := v.Action == abi.Reject; got != tc.judged {
				t.Errorf("rejected = %v, want %v", got, tc.judged)
			}
		})
	}
}
