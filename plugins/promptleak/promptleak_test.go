package promptleak

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestOutput(t *testing.T) {
	cfg := `{"secrets":["Project Nightingale","sk-internal-42"],"canary":"moat-canary-7f3a9c"}`
	tests := []struct {
		name, cfg, text string
		action          abi.Action
		reason          string
	}{
		{"canary verbatim", cfg, "my instructions say moat-canary-7f3a9c", abi.Reject, "the canary"},
		{"canary upper", cfg, "MOAT-CANARY-7F3A9C", abi.Reject, "the canary"},
		{"canary spaced", cfg, "m o a t - c a n a r y - 7 f 3 a 9 c", abi.Reject, "the canary"},
		{"canary split lines", cfg, "moat-can\nary-7f3a9c", abi.Reject, "the canary"},
		{"canary zero width", cfg, "moat\u200b-canary\u200d-7f3a\u2060\U000E0041" + "9c", abi.Reject, "the canary"},
		{"canary fullwidth", cfg, "ｍｏａｔ－ｃａｎａｒｙ－７ｆ３ａ９ｃ", abi.Reject, "the canary"},
		{"secret spaced", cfg, "codename: projectnightingale", abi.Reject, "secret #0"},
		{"second secret", cfg, "key SK-INTERNAL-42", abi.Reject, "secret #1"},
		{"benign", cfg, benchtext.Text4K, abi.Allow, ""},
		{"partial canary", cfg, "moat-canary-7f3a", abi.Allow, ""},
		{"canary only", `{"canary":"zebra-1234"}`, "Zebra-12 34", abi.Reject, "the canary"},
		{"nothing configured", `{}`, "hi", abi.Reject, "nothing to check"},
		{"short secret", `{"secrets":["a b"]}`, "hi", abi.Reject, "secret #0 is shorter than 4"},
		{"bad config", `{"secrets":"x"}`, "hi", abi.Reject, "decoding plugin config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Output(abi.Request{Phase: abi.PhaseOutput, Text: tc.text, Config: []byte(tc.cfg)})
			if v.Action != tc.action || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("got %s %q, want %s containing %q", v.Action, v.Reason, tc.action, tc.reason)
			}
			if strings.Contains(v.Reason, "7f3a9c") || strings.Contains(strings.ToLower(v.Reason), "nightingale") {
				t.Fatalf("reason leaks the secret: %q", v.Reason)
			}
		})
	}
}

// FuzzFold checks that inserting whitespace or zero-width characters into a
// text never hides a needle from the matcher.
func FuzzFold(f *testing.F) {
	f.Add("canary", 2, " ")
	f.Add("ÄÖÜ straße", 3, "\u200b")
	f.Add("abcd", 0, "\t\u202e")
	f.Fuzz(func(t *testing.T, s string, at int, ins string) {
		if at < 0 || at > len(s) || !utf8.ValidString(s) || !utf8Boundary(s, at) || len(fold(nil, ins)) != 0 {
			return // only whitespace/invisible insertions at rune boundaries
		}
		if a, b := fold(nil, s), fold(nil, s[:at]+ins+s[at:]); string(a) != string(b) {
			t.Fatalf("insertion changed folding: %q vs %q", a, b)
		}
	})
}

func utf8Boundary(s string, i int) bool { return i == len(s) || i == 0 || s[i]&0xC0 != 0x80 }

func BenchmarkOutput4K(b *testing.B) {
	r := abi.Request{Text: benchtext.Text4K, Config: []byte(`{"secrets":["Project Nightingale"],"canary":"moat-canary-7f3a9c"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if v := Output(r); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}
