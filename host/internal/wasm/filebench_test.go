package wasm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/sdk/abi"
)

// mixedText is 4 KiB of the mixed-script text `moat plugin bench` sends.
var mixedText = func() string {
	const unit = "The quick brown fox jumps over the lazy dog; café, naïve, 日本語, 😀. "
	s := strings.Repeat(unit, 4096/len(unit)+1)[:4096]
	for len(s) > 0 && s[len(s)-1] >= 0x80 {
		s = s[:len(s)-1]
	}
	return s
}()

// BenchmarkFiles compares the plugin modules listed (colon-separated) in
// MOAT_BENCH_WASM, and the minimal hand-made module, with and without
// fuel: one call each on 4 KiB of mixed text, round-robin so all see the
// same machine, reported as p50 per module and mode (the breakdown in
// RATIONALE.md.s plugin-runtime section comes from it). MOAT_BENCH_CONFIG is the config.
func BenchmarkFiles(b *testing.B) {
	list := os.Getenv("MOAT_BENCH_WASM")
	if list == "" {
		b.Skip("MOAT_BENCH_WASM names no module")
	}
	type subject struct {
		name string
		p    *Plugin
		d    []time.Duration
	}
	var subjects []*subject
	r := newRuntime(b)
	old := interrupt
	defer func() { interrupt = old }()
	add := func(name string, code []byte) {
		for _, mode := range []struct {
			name string
			mode interruptMode
		}{{"none", interruptNone}, {"fuel", interruptFuel}} {
			interrupt = mode.mode
			p := load(b, r, name, code, Limits{Timeout: time.Second, PoolSize: 1})
			subjects = append(subjects, &subject{name: name + "-" + mode.name, p: p})
		}
	}
	add("noop", abiModule().finishABI().hook("moat_input", nil, i64c(0)).bytes())
	add("scan", scanModule())
	add("noopv2", v2Module(nil))
	for _, f := range filepath.SplitList(list) {
		code, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		add(strings.TrimSuffix(filepath.Base(f), ".wasm"), code)
	}
	req := &abi.Request{Phase: abi.PhaseInput, Text: mixedText, Config: []byte(os.Getenv("MOAT_BENCH_CONFIG"))}
	ctx := context.Background()
	for _, s := range subjects { // warm up
		for range 50 {
			if _, err := s.p.Call(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, s := range subjects {
			t0 := time.Now()
			if _, err := s.p.Call(ctx, req); err != nil {
				b.Fatal(err)
			}
			s.d = append(s.d, time.Since(t0))
		}
	}
	for _, s := range subjects {
		slices.Sort(s.d)
		b.ReportMetric(float64(s.d[len(s.d)/2].Nanoseconds())/1e3, s.name+"-p50-us")
	}
}

// BenchmarkEncodeRequest is the host's side of the envelope on 4 KiB:
// JSON for ABI v1, the binary layout for v2 (into a reused buffer, as the
// host writes it into guest memory).
func BenchmarkEncodeRequest(b *testing.B) {
	req := &abi.Request{Phase: abi.PhaseInput, Text: mixedText, Context: abi.Context{Route: "r", RequestID: "id"}}
	b.Run("v1-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("v2-binary", func(b *testing.B) {
		buf := make([]byte, abi.RequestSizeV2(req))
		b.ReportAllocs()
		for b.Loop() {
			if err := abi.PutRequestV2(buf[:abi.RequestSizeV2(validUTF8(req))], req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
