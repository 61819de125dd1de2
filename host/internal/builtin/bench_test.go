package builtin

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

// benign4K reads testdata/benign-4k.txt: prose and code, no personal data.
func benign4K(b *testing.B) string {
	t, err := os.ReadFile("testdata/benign-4k.txt")
	if err != nil {
		b.Fatal(err)
	}
	return string(t)
}

// The default chains, run natively on 4 KiB of benign text. Compare with
// BenchmarkBaselineJSON4K, a JSON round trip of the same request (work any
// gateway does per call), measured in the same run.
var (
	defaultInput  = []string{"strip-markers", "unicode-clean", "injection-heuristics", "pii-redact", "secret-redact"}
	defaultOutput = []string{"html-escape", "pii-redact", "secret-redact"}
)

func runChain(b *testing.B, names []string, phase abi.Phase) {
	hs := make([]Handler, len(names))
	for i, n := range names {
		in, out, ok := Native(n)
		if !ok {
			b.Fatalf("no built-in %q", n)
		}
		hs[i] = in
		if phase == abi.PhaseOutput {
			hs[i] = out
		}
	}
	req := abi.Request{Phase: phase, Text: benign4K(b)}
	if phase == abi.PhaseOutput {
		req.Text = plain(req.Text)
	}
	b.SetBytes(int64(len(req.Text)))
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range hs {
			if v := h(req); v.Action != abi.Allow {
				b.Fatalf("%s: %s", v.Action, v.Reason)
			}
		}
	}
}

// plain makes benign model output without HTML special characters.
func plain(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '<', '>', '&', '"', '\'':
			b[i] = ' '
		}
	}
	return string(b)
}

func BenchmarkDefaultInputChain4K(b *testing.B)  { runChain(b, defaultInput, abi.PhaseInput) }
func BenchmarkDefaultOutputChain4K(b *testing.B) { runChain(b, defaultOutput, abi.PhaseOutput) }

func BenchmarkBaselineJSON4K(b *testing.B) {
	req := abi.Request{Phase: abi.PhaseInput, Text: benign4K(b)}
	b.SetBytes(int64(len(req.Text)))
	b.ReportAllocs()
	for b.Loop() {
		buf, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		var back abi.Request
		if err := json.Unmarshal(buf, &back); err != nil {
			b.Fatal(err)
		}
	}
}
