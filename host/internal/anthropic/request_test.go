package anthropic

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/fault"
)

func TestDecodeRequestErrors(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"not json", `{"model":`, "JSON"},
		{"array", `[]`, "JSON object"},
		{"null", `null`, "JSON object"},
		{"no model", `{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"model number", `{"model":1,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"empty model", `{"model":"","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"no max_tokens", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"max_tokens string", `{"model":"m","max_tokens":"1","messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"max_tokens zero", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"max_tokens float", `{"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"stream string", `{"model":"m","max_tokens":1,"stream":"yes","messages":[{"role":"user","content":"x"}]}`, "stream"},
		{"no messages", `{"model":"m","max_tokens":1}`, "messages"},
		{"messages object", `{"model":"m","max_tokens":1,"messages":{}}`, "messages"},
		{"messages empty", `{"model":"m","max_tokens":1,"messages":[]}`, "messages"},
		{"message not object", `{"model":"m","max_tokens":1,"messages":[1]}`, "messages.0"},
		{"bad role", `{"model":"m","max_tokens":1,"messages":[{"role":"x","content":"x"}]}`, "messages.0.role"},
		{"no content", `{"model":"m","max_tokens":1,"messages":[{"role":"user"}]}`, "messages.0.content"},
		{"content number", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":3}]}`, "messages.0.content"},
		{"block no type", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0.type"},
		{"text block no text", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages.0.content.0.text"},
		{"system number", `{"model":"m","max_tokens":1,"system":5,"messages":[{"role":"user","content":"x"}]}`, "system"},
		{"system role with image", `{"model":"m","max_tokens":1,"messages":[{"role":"system","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}`, "system prompt holds only text"},
		{"unknown block", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"hologram","text":"x"}]}]}`, `block type "hologram"`},
		{"unknown source", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"ftp","url":"x"}}]}]}`, `source type "ftp"`},
		{"max_tokens absurd", `{"model":"m","max_tokens":700000000000000,"messages":[{"role":"user","content":"x"}]}`, "max_tokens: must be at most"},
		{"max_tokens overflow", `{"model":"m","max_tokens":70000000000000000000000,"messages":[{"role":"user","content":"x"}]}`, "max_tokens: must be at most"},
		{"duplicate key", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"attack","content":"benign"}]}`, "duplicate"},
		{"escaped duplicate key", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"attack","c\u006fntent":"benign"}]}`, "duplicate"},
		{"escaped case variant", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"attack","\u0043ontent":"ok"}]}`, "only in case"},
		{"case variant top", `{"model":"m","max_tokens":1,"Model":"other","messages":[{"role":"user","content":"x"}]}`, "only in case"},
		{"case variant block", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"a","TEXT":"b"}]}]}`, "only in case"},
		{"kelvin sign", "{\"model\":\"m\",\"max_tokens\":1,\"max_to\u212aens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "only in case"},
		{"lone surrogate", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"\ud800"}]}`, "JSON"},
		{"too deep", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"x","name":"n","input":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}]}]}`, "nesting"},
		{"invalid utf8", "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body), Options{})
			var fe *fault.Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *fault.Error", err)
			}
			if fe.Kind != fault.InvalidRequest {
				t.Errorf("kind = %s, want %s", fe.Kind, fault.InvalidRequest)
			}
			if !strings.Contains(fe.Msg, tc.field) {
				t.Errorf("message %q does not name %q", fe.Msg, tc.field)
			}
		})
	}
}

func TestEncodeUnchangedIsIdentical(t *testing.T) {
	body := []byte(`{"model":"m","max_tokens":5,"zzz":{"a":[1,2]},"messages":[{"role":"user","content":"hi"}]}`)
	r, err := DecodeRequest(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.EachText(func(_ Segment, s string) (string, error) { return s, nil }); err != nil {
		t.Fatal(err)
	}
	out, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(body) {
		t.Fatalf("unchanged request re-encoded: %s", out)
	}
}

func TestEachTextRewrites(t *testing.T) {
	body := `{"model":"m","max_tokens":5,"unknown":{"keep":true},"messages":[
	 {"role":"user","content":"one"},
	 {"role":"assistant","content":"five"},
	 {"role":"user","content":[{"type":"text","text":"two","cache_control":{"type":"ephemeral"}},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}},
	   {"type":"tool_result","tool_use_id":"t1","content":"three"},
	   {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"four"}]}]}]}`
	r, err := DecodeRequest([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := r.EachText(func(_ Segment, s string) (string, error) { seen = append(seen, s); return strings.ToUpper(s), nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"one", "five", "two", "three", "four"}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("visited %v, want %v", seen, want)
	}
	out, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(`"one"`, `"ONE"`, `"five"`, `"FIVE"`, `"two"`, `"TWO"`, `"three"`, `"THREE"`, `"four"`, `"FOUR"`).Replace(body)
	var wantV map[string]any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantV) {
		t.Fatalf("got %s", out)
	}
}

func TestApplySystem(t *testing.T) {
	base := `{"model":"m","max_tokens":5,"system":"client prompt","messages":[{"role":"user","content":"x"}]}`
	cases := []struct {
		policy, extra string
		want          any
	}{
		{SystemClient, "", "client prompt"},
		{SystemPin, "", "server"},
		{SystemPrepend, "", []any{map[string]any{"type": "text", "text": "server"}, map[string]any{"type": "text", "text": "client prompt"}}},
		{SystemPin, "canary", []any{map[string]any{"type": "text", "text": "server"}, map[string]any{"type": "text", "text": "canary"}}},
		{SystemClient, "canary", []any{map[string]any{"type": "text", "text": "client prompt"}, map[string]any{"type": "text", "text": "canary"}}},
	}
	for _, tc := range cases {
		t.Run(tc.policy+"+"+tc.extra, func(t *testing.T) {
			r, err := DecodeRequest([]byte(base), Options{})
			if err != nil {
				t.Fatal(err)
			}
			r.ApplySystem(tc.policy, "server", tc.extra)
			out, _ := r.Encode()
			var got struct{ System any }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.System, tc.want) {
				t.Fatalf("system = %#v, want %#v", got.System, tc.want)
			}
		})
	}
}

// FuzzDecodeRequest: decoding never panics, and a request that decodes
// re-encodes (after an identity rewrite) to JSON that decodes again with
// the same model and text.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"tool_result","tool_use_id":"x","content":[{"type":"text","text":"b"}]}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"assistant","content":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(body, Options{})
		if err != nil {
			return
		}
		var texts []string
		if err := r.EachText(func(seg Segment, s string) (string, error) {
			texts = append(texts, s)
			if seg.Fixed {
				return s, nil
			}
			return s + "!", nil
		}); err != nil {
			t.Fatal(err)
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		r2, err := DecodeRequest(out, Options{})
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if r2.Model != r.Model || r2.MaxTokens != r.MaxTokens {
			t.Fatalf("model or max_tokens changed")
		}
		var texts2 []string
		var fixed []bool
		_ = r2.EachText(func(seg Segment, s string) (string, error) {
			texts2 = append(texts2, s)
			fixed = append(fixed, seg.Fixed)
			return s, nil
		})
		if len(texts2) != len(texts) {
			t.Fatalf("texts %d -> %d", len(texts), len(texts2))
		}
		for i := range texts {
			if !fixed[i] && texts2[i] != texts[i]+"!" {
				t.Fatalf("text %d: %q -> %q", i, texts[i], texts2[i])
			}
		}
	})
}
