package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// memoryGrowModule grows its memory a page at a time and traps when the
// cap refuses: loop { if memory.grow(1) == -1 { unreachable } }.
func memoryGrowModule() []byte {
	body := [][]byte{
		{0x03, 0x40}, i32c(1), {0x40, 0x00}, i32c(-1), {0x46, 0x04, 0x40, 0x00, 0x0b, 0x0c, 0x00, 0x0b},
		i64c(0),
	}
	return abiModule().finishABI().hook("moat_input", nil, body...).bytes()
}

// goodClient calls p once every 2 ms for d and returns each call's latency
// timed from when it was due, so that a late wake-up (no free core) counts.
func goodClient(t *testing.T, p *Plugin, d time.Duration) []time.Duration {
	t.Helper()
	const every = 2 * time.Millisecond
	var lat []time.Duration
	due := time.Now()
	for end := due.Add(d); due.Before(end); {
		time.Sleep(time.Until(due))
		v, err := p.Call(context.Background(), input("x"))
		if err != nil || v.Text != "ok" {
			t.Errorf("well-behaved call: %+v, %v", v, err)
		}
		lat = append(lat, time.Since(due))
		if due = due.Add(every); time.Since(due) > every {
			due = time.Now()
		}
	}
	return lat
}

// goMemory returns the bytes the Go runtime holds from the OS.
func goMemory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHostileConcurrency runs 5 hostile workers (more than this machine's
// cores) against a looping, a recursing and a memory-growing plugin while
// a well-behaved client calls another sandboxed plugin, and checks that
// the hostile calls end by 1.5x their deadline (p90) with their cause,
// that memory stays bounded, and that the well-behaved client keeps its
// latency. Before the bulkheads (issue 15) the hostile calls ended at
// 2.2-2.8x their deadline at p90, the recursion held 600+ MB, and the
// well-behaved client waited up to 200 ms.
func TestHostileConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	const workers = 5
	const timeout = 200 * time.Millisecond
	r := newRuntime(t)
	good := load(t, r, "good", goodModule(), Limits{Timeout: time.Second})
	alone := goodClient(t, good, 500*time.Millisecond)
	t.Logf("GOMAXPROCS %d; well-behaved client alone: p50 %v p90 %v max %v", runtime.GOMAXPROCS(0), q(alone, .5), q(alone, .9), q(alone, 1))
	for _, tc := range []struct {
		name   string
		module []byte
		causes []pluginerr.Cause // allowed causes of the hostile calls
	}{
		{"looping", loopModule(), []pluginerr.Cause{pluginerr.Timeout, pluginerr.Saturated}},
		{"recursing", recursionModule(), []pluginerr.Cause{pluginerr.TrapStackOverflow, pluginerr.Saturated}},
		{"memory-growing", memoryGrowModule(), []pluginerr.Cause{pluginerr.TrapMemoryLimit, pluginerr.Saturated}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, r, tc.name, tc.module, Limits{Timeout: timeout, MemoryMB: 16, BreakerFailures: -1})
			defer p.Close(context.Background())
			runtime.GC()
			memBefore := goMemory()
			var peak uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var hostile []time.Duration
			causes := map[pluginerr.Cause]int{}
			for range workers {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						start := time.Now()
						_, err := p.Call(context.Background(), input("hostile"))
						d := time.Since(start)
						mu.Lock()
						hostile = append(hostile, d)
						causes[pluginerr.CauseOf(err)]++
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				tk := time.NewTicker(5 * time.Millisecond)
				defer tk.Stop()
				for {
					peak = max(peak, goMemory())
					select {
					case <-stop:
						return
					case <-tk.C:
					}
				}
			})
			loaded := goodClient(t, good, 1500*time.Millisecond)
			close(stop)
			wg.Wait()
			t.Logf("%d hostile workers: well-behaved p50 %v p90 %v max %v; hostile n=%d p50 %v p90 %v max %v; causes %v; Go memory +%d MiB",
				workers, q(loaded, .5), q(loaded, .9), q(loaded, 1), len(hostile), q(hostile, .5), q(hostile, .9), q(hostile, 1), causes, int64(peak-memBefore)>>20)
			for c, n := range causes {
				ok := false
				for _, want := range tc.causes {
					ok = ok || c == want
				}
				if !ok {
					t.Errorf("%d hostile calls ended with cause %q, want one of %v", n, c, tc.causes)
				}
			}
			// The deadline holds under load: Done-when of issue 15.
			if p90 := q(hostile, .9); p90 > timeout*3/2 {
				t.Errorf("hostile calls ended at p90 %v, over 1.5x their %v deadline", p90, timeout)
			}
			// Bounds chosen from measurement on the loaded 2-core build
			// machine under -race (well-behaved max 40-90 ms there, alone
			// max up to 50 ms from other jobs): generous for CI, but the
			// code before the bulkheads let 5 looping callers stall it for
			// 150-210 ms without -race.
			if m := q(loaded, .9); m > max(10*q(alone, .9), 40*time.Millisecond) {
				t.Errorf("well-behaved client p90 %v with hostile callers, %v alone", m, q(alone, .9))
			}
			if grew := int64(peak - memBefore); grew > 200<<20 {
				t.Errorf("Go memory grew by %d MiB under the hostile callers", grew>>20)
			}
		})
	}
}

// TestSaturated: a plugin whose only slot is held fails the next call at
// once with cause saturated, handled like any plugin error.
func TestSaturated(t *testing.T) {
	r := newRuntime(t)
	p := load(t, r, "loop", loopModule(), Limits{Timeout: 400 * time.Millisecond, MaxConcurrency: 1, QueueTimeout: 20 * time.Millisecond, BreakerFailures: -1})
	first := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), input("x"))
		first <- err
	}()
	time.Sleep(50 * time.Millisecond) // the first call holds the slot
	start := time.Now()
	_, err := p.Call(context.Background(), input("x"))
	if took := time.Since(start); !errors.Is(err, pluginerr.Saturated) || took > 300*time.Millisecond {
		t.Errorf("second call: %v after %v, want saturated after the 20ms queue timeout", err, took)
	}
	if err := <-first; !errors.Is(err, pluginerr.Timeout) {
		t.Errorf("first call: %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = p.Call(context.Background(), input("x")) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if _, err := p.Call(ctx, input("x")); pluginerr.CauseOf(err) != pluginerr.Canceled && pluginerr.CauseOf(err) != pluginerr.Saturated {
		t.Errorf("call on a canceled context: %v, want canceled", err)
	}
}

// TestBreaker: consecutive failures quarantine the plugin; during the
// cooldown calls fail at once; then one probe decides, and a success
// closes the breaker. Successes in between reset the count.
func TestBreaker(t *testing.T) {
	// moat_input traps on a request longer than a short one and allows
	// others.
	short, err := json.Marshal(input("short"))
	if err != nil {
		t.Fatal(err)
	}
	m := abiModule().finishABI()
	mod := m.hook("moat_input", nil, lget(1), i32c(int32(len(short)+5)), []byte{0x4b, 0x04, 0x40, 0x00, 0x0b}, i64c(0)).bytes()
	var mu sync.Mutex
	var changes []BreakerState
	r, err := NewRuntimeWith(context.Background(), RuntimeOptions{CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler), OnBreaker: func(plugin string, st BreakerState) {
		mu.Lock()
		changes = append(changes, st)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	p := load(t, r, "flaky", mod, Limits{Timeout: time.Second, BreakerFailures: 3, BreakerCooldown: 200 * time.Millisecond})
	call := func(text string) error {
		_, err := p.Call(context.Background(), input(text))
		return err
	}
	bad, good := "a text far longer than the short one", "short"
	steps := []struct {
		name  string
		text  string
		want  pluginerr.Cause // "" = success
		state BreakerState    // after the call
	}{
		{"first failure", bad, pluginerr.TrapUnreachable, BreakerClosed},
		{"second failure", bad, pluginerr.TrapUnreachable, BreakerClosed},
		{"a success resets the count", good, "", BreakerClosed},
		{"failure 1 of 3", bad, pluginerr.TrapUnreachable, BreakerClosed},
		{"failure 2 of 3", bad, pluginerr.TrapUnreachable, BreakerClosed},
		{"failure 3 of 3 opens", bad, pluginerr.TrapUnreachable, BreakerOpen},
		{"quarantined, even a good call", good, pluginerr.Quarantined, BreakerOpen},
	}
	for _, st := range steps {
		if err := call(st.text); pluginerr.CauseOf(err) != st.want {
			t.Fatalf("%s: err %v, want cause %q", st.name, err, st.want)
		}
		if got := p.BreakerState(); got != st.state {
			t.Fatalf("%s: state %s, want %s", st.name, got, st.state)
		}
	}
	time.Sleep(250 * time.Millisecond)
	if got := p.BreakerState(); got != BreakerHalfOpen {
		t.Fatalf("after the cooldown: %s, want half_open", got)
	}
	if err := call(bad); !errors.Is(err, pluginerr.TrapUnreachable) || p.BreakerState() != BreakerOpen {
		t.Fatalf("failed probe: %v, state %s; want the breaker open again", err, p.BreakerState())
	}
	time.Sleep(250 * time.Millisecond)
	// Concurrent calls after the cooldown: exactly one probe goes through.
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for range 8 {
		wg.Go(func() { results <- call(good) })
	}
	wg.Wait()
	close(results)
	okN := 0
	for err := range results {
		if err == nil {
			okN++
		} else if !errors.Is(err, pluginerr.Quarantined) && !errors.Is(err, pluginerr.Saturated) {
			t.Errorf("concurrent call during the probe: %v", err)
		}
	}
	if okN < 1 || p.BreakerState() != BreakerClosed {
		t.Fatalf("%d calls passed, state %s; want the probe to close the breaker", okN, p.BreakerState())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if len(changes) != len(want) {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("state changes %v, want %v", changes, want)
		}
	}
}

// TestMemoryBudget: the global cap on wasm memory refuses a new instance
// and a memory.grow past it, at once, and every byte comes back when the
// instances close.
func TestMemoryBudget(t *testing.T) {
	ctx := context.Background()
	r, err := NewRuntimeWith(ctx, RuntimeOptions{CacheDir: cacheDir, MaxMemoryBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	// Two instances of 1 page each fit; the grower then fills the rest.
	grow := load(t, r, "grow", memoryGrowModule(), Limits{Timeout: 20 * time.Second, MemoryMB: 16, PoolSize: 2, BreakerFailures: -1})
	if used := r.MemoryUsed(); used != 2<<16 {
		t.Fatalf("after pre-warming two 1-page instances: %d bytes used", used)
	}
	start := time.Now()
	_, err = grow.Call(ctx, input("x"))
	if !errors.Is(err, pluginerr.TrapMemoryLimit) || time.Since(start) > 10*time.Second {
		t.Fatalf("growth past the global cap: %v after %v, want trap_memory_limit long before the deadline", err, time.Since(start))
	}
	// Fill the budget with a held instance, then a new plugin is refused.
	hold := load(t, r, "hold", goodModule(), Limits{Timeout: time.Second, PoolSize: 1})
	var held []*instanceMemory
	for r.MemoryUsed()+(1<<16) <= 4<<20 {
		m, err := r.reserveMemory(1 << 16)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
	}
	_, err = r.Load(ctx, "refused", goodModule(), Limits{Timeout: time.Second, PoolSize: 1})
	if !errors.Is(err, pluginerr.TrapMemoryLimit) {
		t.Fatalf("loading past the global cap: %v, want trap_memory_limit", err)
	}
	for _, m := range held {
		m.release()
	}
	grow.Close(ctx)
	hold.Close(ctx)
	if used := r.MemoryUsed(); used != 0 {
		t.Errorf("%d bytes still counted after every plugin closed", used)
	}
}
