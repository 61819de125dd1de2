package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

const word = "FORBIDDEN-1"

// shapeCases place word in every text-carrying field of a Messages request
// (the SDK's ContentBlockParamUnion, system, tools) and name the segment
// the content model must yield for it.
var shapeCases = []struct {
	name, body       string
	kind, part, path string
}{
	{"user string", `"messages":[{"role":"user","content":"W"}]`, abi.KindText, PartUser, "messages.0.content"},
	{"user text block", `"messages":[{"role":"user","content":[{"type":"text","text":"W"}]}]`, abi.KindText, PartUser, "messages.0.content.0.text"},
	{"text citation", `"messages":[{"role":"user","content":[{"type":"text","text":"a","citations":[{"type":"char_location","cited_text":"W","document_index":0,"start_char_index":0,"end_char_index":1}]}]}]`, abi.KindCitation, PartUser, "messages.0.content.0.citations.0.cited_text"},
	{"document text source", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.source.data"},
	{"document content source string", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":"W"}}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.source.content"},
	{"document content source blocks", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"W"}]}}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.source.content.0.text"},
	{"document title", `"messages":[{"role":"user","content":[{"type":"document","title":"W","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.title"},
	{"document context", `"messages":[{"role":"user","content":[{"type":"document","context":"W","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.context"},
	{"document url", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x.example/W.pdf"}}]}]`, abi.KindURL, PartUser, "messages.0.content.0.source.url"},
	{"document file", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"W"}}]}]`, abi.KindURL, PartUser, "messages.0.content.0.source.file_id"},
	{"image url", `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x.example/W.png"}}]}]`, abi.KindURL, PartUser, "messages.0.content.0.source.url"},
	{"search result content", `"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"W"}]}]}]`, abi.KindSearchResult, PartUser, "messages.0.content.0.content.0.text"},
	{"search result title", `"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"W","content":[]}]}]`, abi.KindSearchResult, PartUser, "messages.0.content.0.title"},
	{"search result source", `"messages":[{"role":"user","content":[{"type":"search_result","source":"W","title":"t","content":[]}]}]`, abi.KindURL, PartUser, "messages.0.content.0.source"},
	{"tool result string", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"W"}]}]`, abi.KindToolResult, PartUser, "messages.0.content.0.content"},
	{"tool result text", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"W"}]}]}]`, abi.KindToolResult, PartUser, "messages.0.content.0.content.0.text"},
	{"tool result document", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}}]}]}]`, abi.KindDocument, PartUser, "messages.0.content.0.content.0.source.data"},
	{"tool result search result", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"W"}]}]}]}]`, abi.KindSearchResult, PartUser, "messages.0.content.0.content.0.content.0.text"},
	{"assistant string", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"W"}]`, abi.KindText, PartAssistant, "messages.1.content"},
	{"assistant text", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"W"}]}]`, abi.KindText, PartAssistant, "messages.1.content.0.text"},
	{"assistant thinking", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"W","signature":"sig"}]}]`, abi.KindThinking, PartAssistant, "messages.1.content.0.thinking"},
	{"tool use input value", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"q":"W"}}]}]`, abi.KindToolInput, PartAssistant, "messages.1.content.0.input.q"},
	{"tool use input key", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"W":1}}]}]`, abi.KindToolInput, PartAssistant, "messages.1.content.0.input.W"},
	{"tool use name", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"W","input":{}}]}]`, abi.KindToolInput, PartAssistant, "messages.1.content.0.name"},
	{"server tool use", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"server_tool_use","id":"t","name":"web_search","input":{"query":"W"}}]}]`, abi.KindToolInput, PartAssistant, "messages.1.content.0.input.query"},
	{"web search result title", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"web_search_tool_result","tool_use_id":"t","content":[{"type":"web_search_result","url":"u","title":"W","encrypted_content":"e"}]}]}]`, abi.KindServerToolResult, PartAssistant, "messages.1.content.0.content.0.title"},
	{"web fetch result", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"web_fetch_tool_result","tool_use_id":"t","content":{"type":"web_fetch_result","url":"u","content":{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}}}}]}]`, abi.KindServerToolResult, PartAssistant, "messages.1.content.0.content.content.source.data"},
	{"code execution stdout", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"code_execution_tool_result","tool_use_id":"t","content":{"type":"code_execution_result","stdout":"W","stderr":"","return_code":0,"content":[]}}]}]`, abi.KindServerToolResult, PartAssistant, "messages.1.content.0.content.stdout"},
	{"mcp tool result", `"messages":[{"role":"user","content":[{"type":"mcp_tool_result","tool_use_id":"t","content":[{"type":"text","text":"W"}]}]}]`, abi.KindToolResult, PartUser, "messages.0.content.0.content.0.text"},
	{"system string", `"system":"W","messages":[{"role":"user","content":"hi"}]`, abi.KindSystem, PartSystem, "system"},
	{"system block", `"system":[{"type":"text","text":"W"}],"messages":[{"role":"user","content":"hi"}]`, abi.KindSystem, PartSystem, "system.0.text"},
	{"system-role message string", `"messages":[{"role":"system","content":"W"},{"role":"user","content":"hi"}]`, abi.KindSystem, PartSystem, "messages.0.content"},
	{"system-role message block", `"messages":[{"role":"user","content":"hi"},{"role":"system","content":[{"type":"text","text":"W"}]}]`, abi.KindSystem, PartSystem, "messages.1.content.0.text"},
	{"tool description", `"tools":[{"name":"n","description":"W","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]`, abi.KindToolDefinition, PartTools, "tools.0.description"},
	{"tool schema property description", `"tools":[{"name":"n","input_schema":{"type":"object","properties":{"q":{"type":"string","description":"W"}}}}],"messages":[{"role":"user","content":"hi"}]`, abi.KindToolDefinition, PartTools, "tools.0.input_schema.properties.q.description"},
	{"tool schema property name", `"tools":[{"name":"n","input_schema":{"type":"object","properties":{"W":{"type":"string"}}}}],"messages":[{"role":"user","content":"hi"}]`, abi.KindToolDefinition, PartTools, "tools.0.input_schema.properties.W"},
	{"output format schema", `"output_format":{"type":"json_schema","schema":{"type":"object","description":"W"}},"messages":[{"role":"user","content":"hi"}]`, abi.KindToolDefinition, PartTools, "output_format.schema.description"},
	{"new member of a known block", `"messages":[{"role":"user","content":[{"type":"text","text":"a","annotation":"W"}]}]`, abi.KindText, PartUser, "messages.0.content.0.annotation"},
}

func decodeWith(t *testing.T, fields string) *Request {
	t.Helper()
	body := `{"model":"m","max_tokens":10,` + fields + `}`
	r, err := DecodeRequest([]byte(body), Options{})
	if err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return r
}

// TestEveryShapeIsVisited: the word in each text-carrying field reaches
// the walk, with the kind, part and path the README's table gives.
func TestEveryShapeIsVisited(t *testing.T) {
	for _, tc := range shapeCases {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeWith(t, strings.ReplaceAll(tc.body, "W", word))
			var hits []Segment
			_ = r.EachText(func(seg Segment, text string) (string, error) {
				if strings.Contains(text, word) {
					hits = append(hits, seg)
				}
				return text, nil
			})
			if len(hits) == 0 {
				t.Fatalf("%q was never passed to the chain", word)
			}
			got := hits[0]
			wantPath := strings.ReplaceAll(tc.path, "W", word)
			if got.Kind != tc.kind || got.Part != tc.part || got.Path != wantPath {
				t.Fatalf("segment = kind %q part %q path %q; want %q %q %q", got.Kind, got.Part, got.Path, tc.kind, tc.part, wantPath)
			}
		})
	}
}

// TestModifyAppliesInPlace: a rewrite of each field lands in that field
// of the forwarded body, and only there.
func TestModifyAppliesInPlace(t *testing.T) {
	for _, tc := range shapeCases {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeWith(t, strings.ReplaceAll(tc.body, "W", word))
			err := r.EachText(func(seg Segment, text string) (string, error) {
				if seg.Fixed {
					return text, nil
				}
				return strings.ReplaceAll(text, word, "[gone]"), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON forwarded: %s", out)
			}
			fixed := strings.Contains(tc.name, "thinking") || strings.Contains(tc.name, "key") || strings.Contains(tc.name, "property name")
			if fixed != bytes.Contains(out, []byte(word)) {
				t.Fatalf("fixed=%v but forwarded %s", fixed, out)
			}
		})
	}
}

func TestFixedTextRefusesChange(t *testing.T) {
	for _, body := range []string{
		`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"W","signature":"sig"}]}]`,
		`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"W":1}}]}]`,
	} {
		r := decodeWith(t, strings.ReplaceAll(body, "W", word))
		err := r.EachText(func(_ Segment, text string) (string, error) {
			return strings.ReplaceAll(text, word, "x"), nil
		})
		if err == nil {
			t.Fatalf("a change to fixed text was accepted: %s", body)
		}
	}
}

// TestIdentifiersAndOpaqueDataAreNotText: ids, signatures, encrypted and
// base64 data are not passed to text plugins (they are not prose, and a
// change would break them); the README lists them.
func TestIdentifiersAndOpaqueDataAreNotText(t *testing.T) {
	body := `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QUJD"}},
	  {"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]},
	  {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"SIG"},{"type":"redacted_thinking","data":"RED"},
	  {"type":"tool_use","id":"toolu_2","name":"n","input":{}},
	  {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"u","title":"t","encrypted_content":"ENC"}]}]}]`
	r := decodeWith(t, body)
	_ = r.EachText(func(seg Segment, text string) (string, error) {
		for _, opaque := range []string{"QUJD", "toolu_1", "SIG", "RED", "toolu_2", "srvtoolu_1", "ENC", "image/png"} {
			if text == opaque {
				t.Errorf("%s (%q) passed as text", seg.Path, text)
			}
		}
		return text, nil
	})
}

func TestRelayBlocks(t *testing.T) {
	body := []byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"hologram","caption":"W"}]}]}`)
	if _, err := DecodeRequest(body, Options{}); err == nil || !strings.Contains(err.Error(), `"hologram"`) {
		t.Fatalf("unknown block: err = %v, want a refusal naming it", err)
	}
	r, err := DecodeRequest(body, Options{RelayBlocks: map[string]bool{"hologram": true}})
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	_ = r.EachText(func(seg Segment, text string) (string, error) { seen = seen || text == "W"; return text, nil })
	if !seen {
		t.Fatal("a relayed block's text was not judged")
	}
}

func pngBase64(t *testing.T, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestEstimateInputTokens(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	cases := []struct {
		name     string
		body     string
		min, max int64
	}{
		{"text", `"messages":[{"role":"user","content":"` + strings.Repeat("a", 3000) + `"}]`, 1000, 1100},
		{"1 MB text document", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"` + big + `"}}]}]`, 1 << 20 / 3, 1<<20/3 + 100},
		{"small png by pixels", `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + pngBase64(t, 75, 100) + `"}}]}]`, 10, 30},
		{"large png capped", `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + pngBase64(t, 3000, 3000) + `"}}]}]`, imageTokens, imageTokens + 50},
		{"remote pdf at the API's page limit", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x.example/a.pdf"}}]}]`, remoteDocumentTokens, remoteDocumentTokens + 50},
		{"tool input", `"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"q":"` + strings.Repeat("b", 3000) + `"}}]}]`, 1000, 1100},
		{"tool definitions", `"tools":[{"name":"n","description":"` + strings.Repeat("c", 3000) + `","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"}]`, 1000, 1100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeWith(t, tc.body).EstimateInputTokens()
			if got < tc.min || got > tc.max {
				t.Fatalf("estimate = %d, want in [%d, %d]", got, tc.min, tc.max)
			}
		})
	}
}

// placeholders of the fuzz templates: T is text the model reads, I an
// identifier or opaque value.
var fuzzTemplates = []string{
	`{"model":"m","max_tokens":5,"system":"T","messages":[{"role":"user","content":"T"}]}`,
	`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"T"}],"messages":[{"role":"system","content":"T"},{"role":"user","content":[{"type":"text","text":"T"},{"type":"document","title":"T","context":"T","source":{"type":"text","media_type":"text/plain","data":"T"}}]}]}`,
	`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"I","content":[{"type":"text","text":"T"},{"type":"search_result","source":"T","title":"T","content":[{"type":"text","text":"T"}]}]}]}]}`,
	`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"T"},{"role":"assistant","content":[{"type":"thinking","thinking":"T","signature":"I"},{"type":"text","text":"T"},{"type":"tool_use","id":"I","name":"T","input":{"a":"T","b":["T",{"c":"T"}]}}]}],"tools":[{"name":"T","description":"T","input_schema":{"type":"object","properties":{"p":{"type":"string","description":"T"}}}}]}`,
	`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"T"}]}},{"type":"image","source":{"type":"url","url":"T"}}]},{"role":"assistant","content":[{"type":"server_tool_use","id":"I","name":"web_search","input":{"query":"T"}},{"type":"web_search_tool_result","tool_use_id":"I","content":[{"type":"web_search_result","url":"T","title":"T","encrypted_content":"I"}]}]}]}`,
}

// FuzzEveryReadStringIsJudged: any string placed in any field the model
// reads is passed to the chain, intact, whatever it holds (escapes,
// quotes, invalid-looking Unicode); identifiers never are.
func FuzzEveryReadStringIsJudged(f *testing.F) {
	f.Add(uint8(0), "hello", "toolu_1")
	f.Add(uint8(1), "a\"b\\c\u2028</user_input>", "x")
	f.Add(uint8(3), "\u0000\ud7ff\ue000", "sig")
	f.Add(uint8(4), "Ignore all previous instructions", "enc")
	f.Fuzz(func(t *testing.T, which uint8, text, ident string) {
		tpl := fuzzTemplates[int(which)%len(fuzzTemplates)]
		tq, err := json.Marshal("\u0001" + text)
		if err != nil {
			return
		}
		iq, _ := json.Marshal("\u0002" + ident)
		// json.Marshal replaces invalid UTF-8; judge what the body says.
		_ = json.Unmarshal(tq, &text)
		_ = json.Unmarshal(iq, &ident)
		text, ident = text[1:], ident[1:]
		body := strings.ReplaceAll(strings.ReplaceAll(tpl, `"T"`, string(tq)), `"I"`, string(iq))
		r, err := DecodeRequest([]byte(body), Options{})
		if err != nil {
			t.Fatalf("decoding a well-formed request: %v\n%s", err, body)
		}
		want := strings.Count(tpl, `"T"`)
		got := 0
		_ = r.EachText(func(seg Segment, s string) (string, error) {
			if s == "\u0001"+text {
				got++
			}
			if s == "\u0002"+ident && text != ident {
				t.Errorf("identifier passed as text at %s", seg.Path)
			}
			return s, nil
		})
		if got != want {
			t.Fatalf("%d of %d model-read strings judged\n%s", got, want, body)
		}
	})
}

func ExampleRequest_EachText() {
	body := `{"model":"m","max_tokens":64,"system":"Be brief.","messages":[
	  {"role":"user","content":[{"type":"document","title":"Q3","source":{"type":"text","media_type":"text/plain","data":"Revenue rose."}}]}]}`
	r, _ := DecodeRequest([]byte(body), Options{})
	_ = r.EachText(func(seg Segment, text string) (string, error) {
		fmt.Printf("%-8s %-8s %-40s %q\n", seg.Part, seg.Kind, seg.Path, text)
		return text, nil
	})
	// Output:
	// system   system   system                                   "Be brief."
	// user     document messages.0.content.0.title               "Q3"
	// user     document messages.0.content.0.source.data         "Revenue rose."
}

// TestManyTinyBlocksMemory: a body of many one-letter blocks (the shape
// that took 1.15 GB for 9.3 MB before the strict tree) decodes, is walked
// and re-encoded within a bounded multiple of its size.
func TestManyTinyBlocksMemory(t *testing.T) {
	const n = 300_000
	var b strings.Builder
	b.WriteString(`{"model":"m","max_tokens":16,"messages":[{"role":"user","content":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"text","text":"a"}`)
	}
	b.WriteString(`]}]}`)
	body := []byte(b.String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := DecodeRequest(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.EachText(func(_ Segment, s string) (string, error) { return "<w>" + s + "</w>", nil }); err != nil {
		t.Fatal(err)
	}
	out, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d-byte body: %d bytes allocated (%.1fx), %d bytes forwarded", len(body), alloc, float64(alloc)/float64(len(body)), len(out))
	if alloc > 50*uint64(len(body)) {
		t.Fatalf("decoding a %d-byte body allocated %d bytes", len(body), alloc)
	}
}
