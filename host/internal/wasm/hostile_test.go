package wasm

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// goodModule is a well-behaved plugin: it returns a fixed modify verdict.
func goodModule() []byte {
	m := abiModule().finishABI()
	v := m.verdictAt(256, `{"action":"modify","text":"ok","reason":"good"}`)
	return m.hook("moat_input", nil, v).bytes()
}

// hostile builds the hostile modules, one per case.
type hostileCase struct {
	name    string
	module  func() []byte
	lim     Limits
	wantErr error           // for a call; nil means the call must succeed
	cause   pluginerr.Cause // the cause the failed call must carry
	loadErr string          // when set, Load must refuse naming this
	check   func(t *testing.T, p *Plugin, v abi.Verdict)
}

func hostileCases() []hostileCase {
	loopBody := [][]byte{{0x03, 0x40, 0x0c, 0x00, 0x0b}, i64c(0)} // loop br 0 end; i64.const 0
	return []hostileCase{
		{
			name: "infinite loop",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, loopBody...).bytes()
			},
			wantErr: ErrTimeout,
			cause:   pluginerr.Timeout,
		},
		{
			name: "slow loop past the deadline",
			module: func() []byte {
				// for i := 0; i < 1e13; i++ {}
				body := [][]byte{
					{0x03, 0x40}, lget(2), i64c(1), {0x7c}, {0x22, 0x02}, i64c(1e13), {0x54, 0x0d, 0x00, 0x0b},
					i64c(0),
				}
				return abiModule().finishABI().hook("moat_input", []byte{tI64}, body...).bytes()
			},
			wantErr: ErrTimeout,
			cause:   pluginerr.Timeout,
		},
		{
			name: "memory growth to the cap",
			module: func() []byte {
				// while memory.grow(1) != -1 {}; return allow
				body := [][]byte{
					{0x03, 0x40}, i32c(1), {0x40, 0x00}, i32c(-1), {0x47, 0x0d, 0x00, 0x0b},
					i64c(0),
				}
				return abiModule().finishABI().hook("moat_input", nil, body...).bytes()
			},
			lim: Limits{MemoryMB: 2, RecycleMemoryBytes: 1 << 30},
			check: func(t *testing.T, p *Plugin, v abi.Verdict) {
				in := <-p.idle
				defer func() { p.idle <- in }()
				if got := in.mod.Memory().Size(); got != 2<<20 {
					t.Errorf("memory after growth = %d bytes, want the 2 MiB cap", got)
				}
			},
		},
		{
			name: "out-of-bounds result pointer",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, packed(0xffff0000, 100)).bytes()
			},
			wantErr: ErrBadResult,
			cause:   pluginerr.BadResult,
		},
		{
			name: "huge result",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, packed(0, 0xffffffff)).bytes()
			},
			wantErr: ErrBadResult,
			cause:   pluginerr.ResultTooLarge,
		},
		{
			name: "result over max_output_bytes",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, packed(0, 60000)).bytes()
			},
			lim:     Limits{MaxOutputBytes: 1024},
			wantErr: ErrBadResult,
			cause:   pluginerr.ResultTooLarge,
		},
		{
			name: "unreachable trap",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, []byte{0x00}).bytes()
			},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapUnreachable,
		},
		{
			name: "stack overflow by recursion",
			module: func() []byte {
				m := abiModule().finishABI()
				// f(x) = f(x+1) + 1
				f := m.nImports + len(m.funcs)
				m.fn([]byte{tI32}, []byte{tI32}, nil, lget(0), i32c(1), []byte{0x6a}, call(f), i32c(1), []byte{0x6a})
				return m.hook("moat_input", nil, i32c(0), call(f), []byte{0x1a}, i64c(0)).bytes()
			},
			// The call-depth bound of the rewrite stops it long before
			// wazero's 400 MB stack ceiling (RATIONALE.md, the plugin runtime).
			wantErr: ErrTrap,
			cause:   pluginerr.TrapStackOverflow,
		},
		{
			name: "out-of-bounds load",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, i32c(0x7ffffff0), []byte{0x28, 0x02, 0x00, 0x1a}, i64c(0)).bytes()
			},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapOutOfBounds,
		},
		{
			name: "memory growth past the cap, then a trap",
			module: func() []byte {
				// loop { if memory.grow(1) == -1 { unreachable } }
				body := [][]byte{
					{0x03, 0x40}, i32c(1), {0x40, 0x00}, i32c(-1), {0x46, 0x04, 0x40, 0x00, 0x0b, 0x0c, 0x00, 0x0b},
					i64c(0),
				}
				return abiModule().finishABI().hook("moat_input", nil, body...).bytes()
			},
			lim:     Limits{MemoryMB: 2},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapMemoryLimit,
		},
		{
			name: "integer divide by zero",
			module: func() []byte {
				return abiModule().finishABI().hook("moat_input", nil, i32c(1), i32c(0), []byte{0x6d, 0x1a}, i64c(0)).bytes()
			},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapOther,
		},
		{
			name: "proc_exit",
			module: func() []byte {
				m := abiModule()
				exit := m.importFunc("wasi_snapshot_preview1", "proc_exit", []byte{tI32}, nil)
				m.finishABI()
				return m.hook("moat_input", nil, i32c(3), call(exit), i64c(0)).bytes()
			},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapProcExit,
		},
		{
			name: "env.abort",
			module: func() []byte {
				m := abiModule()
				ab := m.importFunc("env", "abort", []byte{tI32, tI32, tI32, tI32}, nil)
				m.finishABI()
				return m.hook("moat_input", nil, i32c(0), i32c(0), i32c(1), i32c(2), call(ab), i64c(0)).bytes()
			},
			wantErr: ErrTrap,
			cause:   pluginerr.TrapUnreachable,
		},
		{
			name: "path_open without preopens",
			module: func() []byte {
				m := abiModule()
				open := m.importFunc("wasi_snapshot_preview1", "path_open",
					[]byte{tI32, tI32, tI32, tI32, tI32, tI64, tI64, tI32, tI32}, []byte{tI32})
				m.finishABI()
				m.data = append(m.data, tData{64, []byte("etc/passwd")})
				opened := m.verdictAt(256, `{"action":"modify","text":"OPENED"}`)
				denied := m.verdictAt(512, `{"action":"reject","reason":"denied"}`)
				// Try fds 3 (the first preopen, if any) and 4; errno != 0 on both -> denied.
				try := func(fd int32) []byte {
					b := slices.Concat(i32c(fd), i32c(0), i32c(64), i32c(10), i32c(0), i64c(-1), i64c(-1), i32c(0), i32c(128), call(open))
					return append(b, 0x45, 0x04, 0x40) // i32.eqz if
				}
				body := slices.Concat(try(3), opened, []byte{0x0f, 0x0b}, try(4), opened, []byte{0x0f, 0x0b}, denied)
				return m.hook("moat_input", nil, body).bytes()
			},
			check: func(t *testing.T, p *Plugin, v abi.Verdict) {
				if v.Action != abi.Reject || v.Reason != "denied" {
					t.Errorf("path_open: verdict %+v, want the guest to be denied", v)
				}
			},
		},
		{
			name: "non-JSON verdict",
			module: func() []byte {
				m := abiModule().finishABI()
				return m.hook("moat_input", nil, m.verdictAt(256, "this is not json")).bytes()
			},
			wantErr: abi.ErrBadVerdict,
			cause:   pluginerr.BadVerdictJSON,
		},
		{
			name: "unknown action",
			module: func() []byte {
				m := abiModule().finishABI()
				return m.hook("moat_input", nil, m.verdictAt(256, `{"action":"explode"}`)).bytes()
			},
			wantErr: abi.ErrUnknownAction,
			cause:   pluginerr.UnknownAction,
		},
		{
			name: "modify without text",
			module: func() []byte {
				m := abiModule().finishABI()
				return m.hook("moat_input", nil, m.verdictAt(256, `{"action":"modify"}`)).bytes()
			},
			wantErr: abi.ErrMissingText,
			cause:   pluginerr.BadVerdictJSON,
		},
		{
			name:    "no hook exported",
			module:  func() []byte { return abiModule().finishABI().bytes() },
			loadErr: "exports no hook",
		},
		{
			name: "foreign import",
			module: func() []byte {
				m := abiModule()
				m.importFunc("env", "system", []byte{tI32}, []byte{tI32})
				return m.finishABI().hook("moat_input", nil, i64c(0)).bytes()
			},
			loadErr: `imports function "system" from module "env"`,
		},
		{
			name: "imported memory",
			module: func() []byte {
				m := newModule()
				m.imports = append(m.imports, tImport{module: "env", name: "memory", kind: 2})
				return m.finishABI().hook("moat_input", nil, i64c(0)).bytes()
			},
			loadErr: `imports memory "memory" from module "env"`,
		},
		{
			name: "moat tick imported directly",
			module: func() []byte {
				m := abiModule()
				m.importFunc("moat", "__tick", nil, []byte{tI32})
				return m.finishABI().hook("moat_input", nil, i64c(0)).bytes()
			},
			loadErr: `imports function "__tick"`,
		},
		{
			name: "hook with the wrong signature",
			module: func() []byte {
				m := abiModule().finishABI()
				m.export("moat_input", 0, m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(0)))
				return m.bytes()
			},
			loadErr: `export "moat_input" has signature`,
		},
		{
			name: "memory not exported",
			module: func() []byte {
				m := newModule()
				m.memory, m.memMin = true, 1
				return m.finishABI().hook("moat_input", nil, i64c(0)).bytes()
			},
			loadErr: `missing export "memory"`,
		},
		{
			name: "declared memory over the cap",
			module: func() []byte {
				m := abiModule()
				m.memMin = 100
				return m.finishABI().hook("moat_input", nil, i64c(0)).bytes()
			},
			lim:     Limits{MemoryMB: 1},
			loadErr: "over the plugin's cap",
		},
	}
}

// maxPause returns the longest stop-the-world pause since before.
func maxPause(before *runtime.MemStats) time.Duration {
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	var longest time.Duration
	for n := before.NumGC + 1; n <= now.NumGC && now.NumGC-n < 256; n++ {
		longest = max(longest, time.Duration(now.PauseNs[(n+255)%256]))
	}
	return longest
}

// median returns the median duration.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestHostile(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	good := load(t, r, "good", goodModule(), Limits{Timeout: time.Second})
	callGood := func() time.Duration {
		start := time.Now()
		v, err := good.Call(ctx, input("x"))
		if err != nil || v.Text != "ok" {
			t.Errorf("good plugin: %+v, %v", v, err)
		}
		return time.Since(start)
	}
	var base []time.Duration
	for i := 0; i < 50; i++ {
		base = append(base, callGood())
	}
	baseline := median(base)
	var gcs []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		runtime.GC()
		gcs = append(gcs, time.Since(start))
	}
	baseGC := median(gcs)

	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			if lim.Timeout == 0 {
				lim.Timeout = 600 * time.Millisecond
			}
			lim.PoolSize = 1
			p, err := r.Load(ctx, tc.name, tc.module(), lim)
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) || !errors.Is(err, ErrRefused) {
					t.Fatalf("Load err = %v, want a refusal containing %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)

			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heapBefore := ms.HeapAlloc

			// Run the hostile call twice (the second on a fresh instance when
			// the first was discarded) while a good plugin and the garbage
			// collector keep running alongside.
			for round := 0; round < 2; round++ {
				done := make(chan struct{})
				var v abi.Verdict
				var callErr error
				var took time.Duration
				go func() {
					defer close(done)
					start := time.Now()
					v, callErr = p.Call(ctx, input("hostile"))
					took = time.Since(start)
				}()
				var during []time.Duration
				var mu sync.Mutex
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
			loop:
				for {
					select {
					case <-done:
						break loop
					default:
					}
					d := callGood()
					runtime.GC() // would never return if the world could not stop
					mu.Lock()
					during = append(during, d)
					mu.Unlock()
					time.Sleep(time.Millisecond)
				}
				if tc.wantErr != nil {
					if !errors.Is(callErr, tc.wantErr) {
						t.Fatalf("round %d: err = %v, want %v", round, callErr, tc.wantErr)
					}
					if got := pluginerr.CauseOf(callErr); got != tc.cause || !errors.Is(callErr, tc.cause) {
						t.Fatalf("round %d: cause %q, want %q (err %v)", round, got, tc.cause, callErr)
					}
					if errors.Is(tc.wantErr, ErrTimeout) || tc.cause == pluginerr.TrapStackOverflow {
						if took > lim.Timeout+2*time.Second {
							t.Errorf("round %d: ended after %v, deadline %v", round, took, lim.Timeout)
						}
					}
				} else if callErr != nil {
					t.Fatalf("round %d: %v", round, callErr)
				}
				// Bounds are generous for a loaded 2-core machine; without the
				// fuel ticks the guest is never stopped and runtime.GC()
				// above never returns (the test binary hangs).
				if tc.check != nil && round == 0 {
					tc.check(t, p, v)
				}
				// A good call stays within a generous factor of its baseline,
				// and no collection waits for the hostile guest.
				if m := median(during); len(during) > 0 && m > max(50*baseline, 100*time.Millisecond) {
					t.Errorf("good calls during the hostile one: median %v, baseline %v", m, baseline)
				}
				// A stop-the-world that had to wait for the guest would last
				// the whole deadline (or forever, without the fuel ticks).
				if p := maxPause(&before); p > time.Second {
					t.Errorf("a GC pause took %v while the hostile guest ran (baseline GC %v)", p, baseGC)
				}
			}
			p.Close(ctx)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if grew := int64(ms.HeapAlloc) - int64(heapBefore); grew > 64<<20 {
				t.Errorf("heap grew by %d MiB", grew>>20)
			}
			if d := callGood(); d > max(50*baseline, 100*time.Millisecond) {
				t.Errorf("good call after the hostile plugin closed took %v", d)
			}
		})
	}
}
