package denypatterns

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestDenyPatterns(t *testing.T) {
	cfg := `{"patterns":["(?i)\\bdrop\\s+table\\b",{"name":"internal-host","pattern":"\\.corp\\.example\\b"}]}`
	tests := []struct {
		name, cfg, text string
		action          abi.Action
		reason          string
	}{
		{"sql", cfg, "please DROP   TABLE users;", abi.Reject, `#0 "(?i)\\bdrop\\s+table\\b"`},
		{"named", cfg, "connect to db1.corp.example now", abi.Reject, "internal-host"},
		{"benign", cfg, "drop the tablecloth on the table", abi.Allow, ""},
		{"benign code", cfg, benchtext.Text4K, abi.Allow, ""},
		{"bad regex", `{"patterns":["ok","(unclosed"]}`, "x", abi.Reject, `compiling pattern #1 "(unclosed"`},
		{"empty list", `{"patterns":[]}`, "x", abi.Reject, `"patterns" is empty`},
		{"no config", ``, "x", abi.Reject, `"patterns" is empty`},
		{"empty pattern", `{"patterns":[""]}`, "x", abi.Reject, "is empty"},
		{"wrong element", `{"patterns":[1]}`, "x", abi.Reject, "string or {name, pattern}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []func(abi.Request) abi.Verdict{Input, Output} {
				v := h(abi.Request{Text: tc.text, Config: []byte(tc.cfg)})
				if v.Action != tc.action || !strings.Contains(v.Reason, tc.reason) {
					t.Fatalf("got %s %q, want %s %q", v.Action, v.Reason, tc.action, tc.reason)
				}
				if v.Action == abi.Reject && strings.Contains(tc.reason, "#0") && (len(v.Findings) != 1 || tc.text[v.Findings[0].Start:v.Findings[0].End] != "DROP   TABLE") {
					t.Fatalf("finding %+v", v.Findings)
				}
			}
		})
	}
}

func BenchmarkInput4K(b *testing.B) {
	r := abi.Request{Text: benchtext.Text4K, Config: []byte(`{"patterns":["(?i)drop\\s+table","rm -rf /"]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if v := Input(r); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}
