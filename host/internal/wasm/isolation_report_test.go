package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIsolationReport measures the figures of issue 15's "Done when": a
// well-behaved client's latency alone and while 5 workers hammer a looping
// or recursing plugin (timeout_ms = 200, memory_mb = 16), the hostile
// calls' own durations, and the process's peak RSS. It only reports (it is
// the reproducible before/after command); the pass/fail bounds live in
// TestBulkhead. Run it with
//
//	MOAT_ISOLATION_REPORT=1 go test -run TestIsolationReport -v -count=1 ./host/internal/wasm/
func TestIsolationReport(t *testing.T) {
	if os.Getenv("MOAT_ISOLATION_REPORT") == "" {
		t.Skip("set MOAT_ISOLATION_REPORT=1 to measure")
	}
	ctx := context.Background()
	r := newRuntime(t)
	good := load(t, r, "good", goodModule(), Limits{Timeout: time.Second})
	dur := 3 * time.Second
	if s := os.Getenv("MOAT_ISOLATION_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		dur = time.Duration(n) * time.Second
	}
	workers := 5
	// The well-behaved client runs either a sandboxed plugin (which shares
	// the sandbox's CPU slots with the hostile one) or, with
	// MOAT_ISOLATION_GOOD=native, the native work a built-in chain does
	// (hashing the text stands in for it).
	native := os.Getenv("MOAT_ISOLATION_GOOD") == "native"
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 90))
	goodCall := func() error {
		if native {
			_ = sha256.Sum256(text)
			return nil
		}
		_, err := good.Call(ctx, input("x"))
		return err
	}
	goodLoop := func(d time.Duration) []time.Duration {
		// One request every 2 ms, timed from when it was due, so that a
		// late wake-up (no free core) counts against the latency.
		const every = 2 * time.Millisecond
		var lat []time.Duration
		due := time.Now()
		for end := due.Add(d); due.Before(end); {
			time.Sleep(time.Until(due))
			if err := goodCall(); err != nil {
				t.Errorf("good call: %v", err)
			}
			lat = append(lat, time.Since(due))
			if due = due.Add(every); time.Since(due) > every {
				due = time.Now()
			}
		}
		return lat
	}
	alone := goodLoop(dur / 2)
	t.Logf("native good client: %v", native)
	t.Logf("GOMAXPROCS %d; good client alone: n=%d p50 %v p99 %v max %v", runtime.GOMAXPROCS(0), len(alone), q(alone, .5), q(alone, .99), q(alone, 1))
	for _, sc := range []struct {
		name   string
		module []byte
	}{
		{"loop", loopModule()},
		{"recursion", recursionModule()},
	} {
		lim := isolationLimits(Limits{Timeout: 200 * time.Millisecond, MemoryMB: 16})
		p := load(t, r, sc.name, sc.module, lim)
		runtime.GC()
		resetPeakRSS()
		stop := make(chan struct{})
		var mu sync.Mutex
		var hostile, ran []time.Duration // all hostile calls; those not refused by a bulkhead
		kinds := map[string]int{}
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					_, err := p.Call(ctx, input("hostile"))
					d := time.Since(start)
					mu.Lock()
					hostile = append(hostile, d)
					k := errKind(err)
					kinds[k]++
					if k != "saturated" && k != "quarantined" {
						ran = append(ran, d)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		loaded := goodLoop(dur)
		close(stop)
		wg.Wait()
		t.Logf("%s x%d: good client n=%d p50 %v (%.1fx alone) p99 %v max %v; hostile n=%d p50 %v p90 %v (%.2fx timeout) max %v; those that ran: p90 %v (%.2fx) max %v; outcomes %v; peak RSS %d MiB",
			sc.name, workers, len(loaded), q(loaded, .5), float64(q(loaded, .5))/float64(q(alone, .5)), q(loaded, .99), q(loaded, 1),
			len(hostile), q(hostile, .5), q(hostile, .9), float64(q(hostile, .9))/float64(lim.Timeout), q(hostile, 1),
			q(ran, .9), float64(q(ran, .9))/float64(lim.Timeout), q(ran, 1), kinds, peakRSS()>>20)
		p.Close(ctx)
	}
}

func q(d []time.Duration, f float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(f*float64(len(s))))]
}

// errKind names an error for the report by the first sentinel it wraps.
func errKind(err error) string {
	if err == nil {
		return "ok"
	}
	for _, k := range []struct {
		name string
		err  error
	}{{"timeout", ErrTimeout}, {"trap", ErrTrap}, {"bad result", ErrBadResult}, {"closed", ErrClosed}} {
		if errors.Is(err, k.err) {
			if s := causeName(err); s != "" {
				return s
			}
			return k.name
		}
	}
	if s := causeName(err); s != "" {
		return s
	}
	return "other: " + err.Error()
}

// loopModule never returns from moat_input.
func loopModule() []byte {
	return abiModule().finishABI().hook("moat_input", nil, []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}, i64c(0)).bytes()
}

// recursionModule recurses without end in moat_input: f(x) = f(x+1) + 1.
func recursionModule() []byte {
	m := abiModule().finishABI()
	f := m.nImports + len(m.funcs)
	m.fn([]byte{tI32}, []byte{tI32}, nil, lget(0), i32c(1), []byte{0x6a}, call(f), i32c(1), []byte{0x6a})
	return m.hook("moat_input", nil, i32c(0), call(f), []byte{0x1a}, i64c(0)).bytes()
}

// resetPeakRSS resets the kernel's high-water mark of this process's RSS.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in bytes (0 when unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(rest))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

var _ = fmt.Sprint
