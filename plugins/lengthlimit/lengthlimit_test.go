package lengthlimit

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestLengthLimit(t *testing.T) {
	tests := []struct {
		name, cfg, text string
		action          abi.Action
		reason          string
	}{
		{"under chars", `{"max_chars":5}`, "héllo", abi.Allow, ""},
		{"over chars", `{"max_chars":4}`, "héllo", abi.Reject, "5 characters exceeds max_chars 4"},
		{"runes not bytes", `{"max_chars":3}`, "日本語", abi.Allow, ""},
		{"over bytes", `{"max_bytes":8}`, "日本語", abi.Reject, "9 bytes exceeds max_bytes 8"},
		{"both, bytes bind", `{"max_chars":100,"max_bytes":3}`, "abcd", abi.Reject, "max_bytes"},
		{"exact", `{"max_bytes":4}`, "abcd", abi.Allow, ""},
		{"empty text", `{"max_chars":1}`, "", abi.Allow, ""},
		{"no limit", `{}`, "x", abi.Reject, "set max_chars or max_bytes"},
		{"no config", ``, "x", abi.Reject, "set max_chars or max_bytes"},
		{"negative", `{"max_chars":-1}`, "x", abi.Reject, "must not be negative"},
		{"bad type", `{"max_chars":"10"}`, "x", abi.Reject, "decoding plugin config"},
		{"huge attack", `{"max_chars":4096}`, strings.Repeat("A", 1<<20), abi.Reject, "1048576 characters exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []func(abi.Request) abi.Verdict{Input, Output} {
				v := h(abi.Request{Text: tc.text, Config: []byte(tc.cfg)})
				if v.Action != tc.action || !strings.Contains(v.Reason, tc.reason) {
					t.Fatalf("got %s %q, want %s %q", v.Action, v.Reason, tc.action, tc.reason)
				}
			}
		})
	}
}

func BenchmarkInput4K(b *testing.B) {
	r := abi.Request{Text: benchtext.Text4K, Config: []byte(`{"max_chars":8000}`)}
	b.ReportAllocs()
	for b.Loop() {
		if v := Input(r); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}
