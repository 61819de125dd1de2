package wasm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestPoolAndIsolation(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		lim      Limits
		wantIdle int
	}{
		{name: "pool is pre-warmed and bounded", lim: Limits{PoolSize: 3}, wantIdle: 3},
		{name: "recycled after N calls", lim: Limits{PoolSize: 1, RecycleCalls: 1}, wantIdle: 0},
		{name: "fresh instance per call", lim: Limits{PoolSize: 2, Fresh: true}, wantIdle: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load(t, r, tt.name, goodModule(), tt.lim)
			defer p.Close(ctx)
			for i := 0; i < 5; i++ {
				v, err := p.Call(ctx, input("x"))
				if err != nil || v.Text != "ok" || v.Reason != "good" {
					t.Fatalf("call %d: %+v %v", i, v, err)
				}
			}
			if n := len(p.idle); n != tt.wantIdle {
				t.Errorf("%d idle instances, want %d", n, tt.wantIdle)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	p := load(t, r, "good", goodModule(), Limits{PoolSize: 1})
	if p.HasPhase(abi.PhaseOutput) || !p.HasPhase(abi.PhaseInput) {
		t.Error("phases")
	}
	if _, err := p.Call(ctx, &abi.Request{Phase: abi.PhaseOutput}); err == nil || !strings.Contains(err.Error(), "no output hook") {
		t.Errorf("missing hook: %v", err)
	}
	// The only instance is busy: a caller whose context ends while waiting
	// gets its context's error.
	p.sem <- struct{}{}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := p.Call(wctx, input("x"))
	cancel()
	<-p.sem
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, input("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(ctx, "late", goodModule(), Limits{}); !errors.Is(err, ErrClosed) {
		t.Errorf("load after close: %v", err)
	}
}
