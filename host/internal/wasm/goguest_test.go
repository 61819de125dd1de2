package wasm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestGoGuest(t *testing.T) {
	r := newRuntime(t)
	p := load(t, r, "goguest", goGuest, Limits{Timeout: 2 * time.Second, PoolSize: 2})
	if !p.HasPhase(abi.PhaseInput) || p.HasPhase(abi.PhaseOutput) {
		t.Fatalf("phases: input %v output %v, want input only (from moat_phases)", p.HasPhase(abi.PhaseInput), p.HasPhase(abi.PhaseOutput))
	}
	if p.LoadTime() <= 0 {
		t.Errorf("LoadTime = %v", p.LoadTime())
	}
	ctx := context.Background()
	tests := []struct {
		name, text string
		config     string
		want       abi.Action
		wantText   string
		wantErr    error
		orErr      error
	}{
		{name: "allow", text: "hello", want: abi.Allow},
		{name: "modify until nothing changes", text: "a<<||>>b", config: `{"word":"<|"}`, want: abi.Modify, wantText: "a>>b"},
		{name: "reject", text: "a forbidden thing", want: abi.Reject},
		{name: "panic is a trap", text: "PANIC", wantErr: ErrTrap},
		{name: "endless Go loop times out", text: "LOOP", wantErr: ErrTimeout},
		// The Go runtime collects harder as it nears the cap, so the out-of-memory
		// trap may come after the deadline: either is a clean failure.
		{name: "memory hog hits the cap", text: "HOG", wantErr: ErrTrap, orErr: ErrTimeout},
		{name: "serves after failures", text: "hello again", want: abi.Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := input(tt.text)
			if tt.config != "" {
				req.Config = []byte(tt.config)
			}
			v, err := p.Call(ctx, req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) && (tt.orErr == nil || !errors.Is(err, tt.orErr)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != tt.want || (tt.wantText != "" && v.Text != tt.wantText) {
				t.Fatalf("verdict = %+v, want %s %q", v, tt.want, tt.wantText)
			}
		})
	}
	if _, err := p.Call(ctx, &abi.Request{Phase: abi.PhaseOutput, Text: "x"}); err == nil {
		t.Error("output call on an input-only plugin succeeded")
	}
	logs := p.Logs()
	for _, want := range []string{"info: redacted <|", "panic in handler: guest asked to panic"} {
		if !strings.Contains(logs, want) {
			t.Errorf("plugin log lacks %q:\n%s", want, logs)
		}
	}
}

// TestGoGuestManyCalls makes 30,000 calls on one pooled instance: without
// WithSysNanotime a Go guest's collector stalls after about 21,000.
func TestGoGuestManyCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r := newRuntime(t)
	// A generous deadline: this test is about memory, and a loaded machine
	// under -race can stall a call for a while.
	p := load(t, r, "goguest", goGuest, Limits{Timeout: 10 * time.Second, PoolSize: 1, RecycleCalls: 1 << 30, MemoryMB: 64})
	req := input("a secret")
	req.Config = []byte(`{"word":"secret"}`)
	var in *instance
	for i := 0; i < 30000; i++ {
		v, err := p.Call(context.Background(), req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if v.Action != abi.Modify {
			t.Fatalf("call %d: %+v", i, v)
		}
		if i == 0 {
			in = <-p.idle
			p.idle <- in
		}
	}
	last := <-p.idle
	p.idle <- last
	if last != in || last.calls != 30000 {
		t.Fatalf("the calls did not all run on one instance (calls on the last: %d)", last.calls)
	}
	if sz := last.mod.Memory().Size(); sz > 32<<20 {
		t.Errorf("memory grew to %d bytes", sz)
	}
}

func TestGoGuestConcurrent(t *testing.T) {
	r := newRuntime(t)
	// Three calls in flight at once, the others queue (without a bound).
	p := load(t, r, "goguest", goGuest, Limits{Timeout: time.Second, PoolSize: 3, MaxConcurrency: 3, QueueTimeout: time.Minute})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				req := input("x secret y")
				req.Config = []byte(`{"word":"secret"}`)
				v, err := p.Call(context.Background(), req)
				if err != nil || v.Text != "x  y" {
					errs <- errors.Join(err, errors.New("bad verdict "+v.Text))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(p.idle); n > 3 {
		t.Errorf("%d idle instances, pool size 3", n)
	}
}
