package anthropic

import (
	"encoding/json"
	"reflect"
	"testing"
)

func userTexts(t *testing.T, r *Request) []string {
	t.Helper()
	var out []string
	if err := r.EachUserText(func(s string) (string, error) { out = append(out, s); return s, nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCaseVariantKeys: encoding/json matches struct fields without regard
// to case, the API does not; moat must judge the text the API will read.
func TestCaseVariantKeys(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"content", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"ATTACK","Content":"benign"}]}`, []string{"ATTACK"}},
		{"content reversed", `{"model":"m","max_tokens":1,"messages":[{"role":"user","Content":"benign","content":"ATTACK"}]}`, []string{"ATTACK"}},
		{"text", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"ATTACK","TEXT":"benign"}]}]}`, []string{"ATTACK"}},
		{"messages", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"ATTACK"}],"Messages":[{"role":"user","content":"benign"}]}`, []string{"ATTACK"}},
		{"kelvin sign", "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"ATTACK\",\"\u212aontent\":\"benign\"}]}", []string{"ATTACK"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tc.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := userTexts(t, r); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("judged %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzFastSlowAgree: the typed and the generic decode accept the same
// requests and visit the same texts in the same order.
func FuzzFastSlowAgree(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"tool_result","tool_use_id":"x","content":[{"type":"text","text":"b"},{"type":1},{"type":"text","text":2}]},{"type":"tool_result","content":"c"}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"image","source":{}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeFast(body, Options{})
		slow, err := decodeSlow(body, Options{})
		if !ok || !json.Valid(body) {
			// The typed decode skips unread values without checking them;
			// invalid JSON it lets through is refused by the API itself.
			return
		}
		if err != nil {
			// The typed decode may accept what the generic one refuses
			// only for case variants, which it checks for; anything else
			// is a divergence.
			t.Fatalf("typed decode accepted what the generic one refused: %v", err)
		}
		var a, b []string
		_ = fast.fast.eachUserText(func(s string) (string, error) { a = append(a, s); return s, nil })
		_ = slow.eachUserTextSlow(func(s string) (string, error) { b = append(b, s); return s, nil })
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("walks differ: typed %q, generic %q", a, b)
		}
		if fast.Model != slow.Model || fast.MaxTokens != slow.MaxTokens || fast.Stream != slow.Stream {
			t.Fatalf("fields differ")
		}
	})
}

// TestFastDecoderPanicsAreContained: goccy/go-json panicked on these; the
// request still gets a 400 (and the stream event an error), not a panic.
func TestFastDecoderPanicsAreContained(t *testing.T) {
	for _, in := range []string{"{\"\\0Y\\", "{\"tYpe\\", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"\u00ff\\`} {
		if _, err := DecodeRequest([]byte(in), Options{}); err == nil {
			t.Errorf("%q decoded", in)
		}
		if _, err := ParseStreamEvent([]byte(in)); err == nil {
			t.Errorf("%q parsed as an event", in)
		}
	}
}

// FuzzResponse: decoding an upstream response never panics, and a changed
// response re-encodes to JSON whose text blocks carry the changed text.
func FuzzResponse(f *testing.F) {
	f.Add([]byte(`{"id":"msg_1","type":"message","content":[{"type":"text","text":"hi <b>"}],"usage":{"input_tokens":1,"output_tokens":2}}`))
	f.Add([]byte(`{"content":[{"type":"tool_use","id":"t","name":"n","input":{}},{"type":"text","text":""}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResponse(body)
		if err != nil {
			return
		}
		if err := r.EachText(func(s string) (string, error) { return s + "!", nil }); err != nil {
			t.Fatal(err)
		}
		out, err := r.Encode()
		if err != nil {
			return
		}
		r2, err := DecodeResponse(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		_ = r2.Text()
	})
}
