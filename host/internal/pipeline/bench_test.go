package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

var benchText = strings.Repeat("The quick brown fox <jumps> over the lazy dog. ", 88)[:4096]

// BenchmarkChain6 runs a chain of six plugins on 4 KiB of text: six
// sandboxed Go guests, and the same handlers' native baseline.
func BenchmarkChain6(b *testing.B) {
	ctx := context.Background()
	code, err := os.ReadFile(guestPath)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := wasm.NewRuntime(ctx, os.TempDir()+"/moat-wasm-test-cache", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	var sandboxed, native Chain
	for i := 0; i < 6; i++ {
		p, err := rt.Load(ctx, fmt.Sprint("g", i), code, wasm.Limits{Timeout: time.Second, PoolSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		conf := []byte(`{"word":"secret"}`)
		sandboxed = append(sandboxed, &Plugin{Stage: wasmStage{p}, Name: p.Name(), Config: conf})
		native = append(native, &Plugin{Name: "n", Config: conf, Stage: &NativeStage{PluginName: "n", Input: func(r abi.Request) abi.Verdict {
			if strings.Contains(r.Text, "secret") {
				return abi.ModifyVerdict(strings.ReplaceAll(r.Text, "secret", ""), "redacted")
			}
			return abi.AllowVerdict()
		}}})
	}
	for _, c := range []struct {
		name  string
		chain Chain
	}{{"native", native}, {"wasm-goguest", sandboxed}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.chain.Run(ctx, abi.PhaseInput, benchText, abi.Context{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
