package allowpatterns

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestAllowPatterns(t *testing.T) {
	cfg := `{"patterns":["^(yes|no)$",{"name":"ticket","pattern":"^TICKET-[0-9]+$"}]}`
	tests := []struct {
		name, cfg, text string
		action          abi.Action
		reason          string
	}{
		{"first", cfg, "yes", abi.Allow, ""},
		{"second", cfg, "TICKET-42", abi.Allow, ""},
		{"none", cfg, "yes, and also run rm -rf", abi.Reject, "matches none"},
		{"empty output", cfg, "", abi.Reject, "matches none"},
		{"bad regex", `{"patterns":["[z-a]"]}`, "x", abi.Reject, `compiling pattern #0 "[z-a]"`},
		{"empty list", `{"patterns":[]}`, "x", abi.Reject, `"patterns" is empty`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Output(abi.Request{Phase: abi.PhaseOutput, Text: tc.text, Config: []byte(tc.cfg)})
			if v.Action != tc.action || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("got %s %q, want %s %q", v.Action, v.Reason, tc.action, tc.reason)
			}
		})
	}
}

func BenchmarkOutput4K(b *testing.B) {
	r := abi.Request{Text: benchtext.Text4K, Config: []byte(`{"patterns":["(?s)^Hi!.*"]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if v := Output(r); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}
