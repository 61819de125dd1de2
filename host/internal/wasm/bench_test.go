package wasm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/sdk/abi"
)

// scanModule is a minimal hand-made plugin that reads every byte of the
// request (counting '<') and allows.
func scanModule() []byte {
	m := abiModule().finishABI()
	body := [][]byte{
		{0x02, 0x40, 0x03, 0x40},             // block loop
		lget(2), lget(1), {0x4f, 0x0d, 0x01}, // i >= len: br_if 1
		lget(0), lget(2), {0x6a, 0x2d, 0x00, 0x00}, i32c('<'), {0x46}, lget(3), {0x6a}, lset(3),
		lget(2), i32c(1), {0x6a}, lset(2),
		{0x0c, 0x00, 0x0b, 0x0b}, // br 0 end end
		lget(3), i32c(1 << 20), {0x4b, 0x04, tI64}, packed(0, 1), {0x05}, i64c(0), {0x0b},
	}
	return m.hook("moat_input", []byte{tI32, tI32}, body...).bytes()
}

// benchText is the 4 KiB text the benchmarks judge.
var benchText = strings.Repeat("The quick brown fox <jumps> over the lazy dog. ", 88)[:4096]

func benchCall(b *testing.B, mod []byte, mode interruptMode, config string) {
	old := interrupt
	interrupt = mode
	defer func() { interrupt = old }()
	r := newRuntime(b)
	p := load(b, r, "bench", mod, Limits{Timeout: time.Second, PoolSize: 1})
	req := &abi.Request{Phase: abi.PhaseInput, Text: benchText, Config: []byte(config)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Call(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCall compares one pooled call on 4 KiB of text under the three
// ways of stopping a guest: fuel (moat's), wazero's WithCloseOnContextDone,
// and none (unsafe: the baseline).
func BenchmarkCall(b *testing.B) {
	modes := []struct {
		name string
		mode interruptMode
	}{{"none", interruptNone}, {"fuel", interruptFuel}, {"closeondone", interruptCloseOnDone}}
	mods := []struct {
		name, config string
		mod          []byte
	}{{"minimal", "", scanModule()}, {"goguest", `{"word":"secret"}`, goGuest}}
	for _, m := range mods {
		for _, mode := range modes {
			b.Run(m.name+"/"+mode.name, func(b *testing.B) { benchCall(b, m.mod, mode.mode, m.config) })
		}
	}
}

// BenchmarkRecursionBomb times one call of a module that recurses without
// end until the call-depth bound stops it (RATIONALE.md, the plugin runtime).
func BenchmarkRecursionBomb(b *testing.B) {
	r := newRuntime(b)
	p := load(b, r, "bomb", recursionModule(), Limits{Timeout: 5 * time.Second, MemoryMB: 16, PoolSize: 1, BreakerFailures: -1})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, input("x")); err == nil {
			b.Fatal("the bomb returned")
		}
	}
}
