package htmlescape

import (
	"html"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestOutput(t *testing.T) {
	tests := []struct {
		name, in, want string
		action         abi.Action
	}{
		{"script", `<script>alert("x")</script>`, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, abi.Modify},
		{"attribute breakout", `" onmouseover='evil()'`, `&#34; onmouseover=&#39;evil()&#39;`, abi.Modify},
		{"ampersand", "Tom & Jerry", "Tom &amp; Jerry", abi.Modify},
		{"existing entity escaped again", "&lt;", "&amp;lt;", abi.Modify},
		{"plain", "Hello, world. 2 + 2 = 4; café ☕", "", abi.Allow},
		{"empty", "", "", abi.Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Output(abi.Request{Phase: abi.PhaseOutput, Text: tc.in})
			if v.Action != tc.action || v.Text != tc.want {
				t.Fatalf("got %s %q, want %s %q", v.Action, v.Text, tc.action, tc.want)
			}
			if tc.action == abi.Modify && html.UnescapeString(v.Text) != tc.in {
				t.Fatalf("does not round-trip: %q", v.Text)
			}
		})
	}
}

// FuzzEscapeStreams checks the streaming promise: escaping two deltas one by
// one equals escaping their concatenation, and no raw special character is
// left.
func FuzzEscapeStreams(f *testing.F) {
	f.Add("<a href='x'>", "&amp;\"")
	f.Add("", "<")
	f.Add("日本<", "語>")
	f.Fuzz(func(t *testing.T, a, b string) {
		whole := Escape(a + b)
		if Escape(a)+Escape(b) != whole {
			t.Fatalf("not incremental: %q + %q", a, b)
		}
		if strings.ContainsAny(whole, `<>"'`) {
			t.Fatalf("special character left in %q", whole)
		}
		if html.UnescapeString(whole) != a+b {
			t.Fatalf("does not round-trip: %q", a+b)
		}
	})
}

func BenchmarkOutput4KPlain(b *testing.B) {
	r := abi.Request{Text: strings.Repeat("The quick brown fox jumps over the lazy dog. ", 92)[:4096]}
	b.ReportAllocs()
	for b.Loop() {
		Output(r)
	}
}

func BenchmarkOutput4KWithMarkup(b *testing.B) {
	r := abi.Request{Text: strings.Repeat("Use <b>bold</b> & \"quotes\" here. ", 125)[:4096]}
	b.ReportAllocs()
	for b.Loop() {
		Output(r)
	}
}
