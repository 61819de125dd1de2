package soak

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// TestLoopModule loads the hand-assembled hostile module in moat's wasm
// runtime: plain texts are allowed, the marker spins until the deadline,
// and the plugin keeps answering after that.
func TestLoopModule(t *testing.T) {
	ctx := context.Background()
	rt, err := wasm.NewRuntime(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	p, err := rt.Load(ctx, "looper", LoopModule(), wasm.Limits{Timeout: 100 * time.Millisecond, PoolSize: 2})
	if err != nil {
		t.Fatalf("loading the module: %v", err)
	}
	cases := []struct {
		name string
		text string
		loop bool
	}{
		{"plain", "hello there", false},
		{"empty", "", false},
		{"marker", "please " + LoopMarker + " spin", true},
		{"marker split", "#L P#", false},
		{"after a loop", "still fine", false},
		{"marker at the end", strings.Repeat("x", 5000) + LoopMarker, true},
		{"long plain", strings.Repeat("y", 50000), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			v, err := p.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: tc.text})
			took := time.Since(t0)
			if tc.loop {
				if !errors.Is(err, wasm.ErrTimeout) {
					t.Fatalf("marker: err = %v, want a timeout", err)
				}
				if took > 2*time.Second {
					t.Errorf("stopped after %v, timeout is 100ms", took)
				}
				return
			}
			if err != nil || v.Action != abi.Allow {
				t.Fatalf("verdict %+v, err %v; want allow", v, err)
			}
		})
	}
}

func TestLEB128(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0}}, {63, []byte{0x3f}}, {64, []byte{0xc0, 0}}, {-1, []byte{0x7f}},
		{-64, []byte{0x40}}, {-65, []byte{0xbf, 0x7f}}, {1024, []byte{0x80, 0x08}}, {65536, []byte{0x80, 0x80, 0x04}},
	} {
		if got := sleb(tc.v); string(got) != string(tc.want) {
			t.Errorf("sleb(%d) = %x, want %x", tc.v, got, tc.want)
		}
	}
	if got := uleb(624485); string(got) != "\xe5\x8e\x26" {
		t.Errorf("uleb(624485) = %x", got)
	}
}
