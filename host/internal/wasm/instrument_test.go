package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// semanticsModule checks that the rewrite keeps calls, indirect calls
// through a table and loops working after function indices shift: the hook
// allows when sum(1..100) is 5050 both ways and returns garbage otherwise.
func semanticsModule() []byte {
	m := abiModule()
	m.importFunc("moat", "log", []byte{tI32, tI32, tI32}, nil)
	m.finishABI()
	// sum(n): acc = 0; loop { acc += n; n--; br_if n != 0 }; acc
	sum := m.fn([]byte{tI32}, []byte{tI32}, []byte{tI32},
		[]byte{0x03, 0x40}, lget(1), lget(0), []byte{0x6a}, lset(1),
		lget(0), i32c(1), []byte{0x6b}, lset(0), lget(0), []byte{0x0d, 0x00, 0x0b}, lget(1))
	m.table, m.elems = 1, []int{sum}
	sumType := m.typ([]byte{tI32}, []byte{tI32})
	check := func(b []byte) []byte { return append(b, append(i32c(5050), 0x47, 0x04, 0x40)...) } // != 5050: if
	bad := append(packed(0xfffffff0, 8), 0x0f, 0x0b)
	body := check(append(i32c(100), call(sum)...))
	body = append(body, bad...)
	body = check(append(body, append(append(i32c(100), i32c(0)...), 0x11, byte(sumType), 0x00)...))
	body = append(body, bad...)
	body = append(body, i64c(0)...)
	return m.hook("moat_input", nil, body).bytes()
}

func TestInstrumentKeepsSemantics(t *testing.T) {
	r := newRuntime(t)
	p := load(t, r, "semantics", semanticsModule(), Limits{Timeout: time.Second})
	v, err := p.Call(context.Background(), input("x"))
	if err != nil || v.Action != "allow" {
		t.Fatalf("%+v %v", v, err)
	}
}

func TestInstrumentRefusesMalformed(t *testing.T) {
	good := goodModule()
	tests := map[string][]byte{
		"empty":             nil,
		"not wasm":          []byte("hello world"),
		"component":         append([]byte("\x00asm\x0d\x00\x01\x00"), good[8:]...),
		"truncated":         good[:len(good)-3],
		"unknown section":   append(bytes.Clone(good), 0x20, 0x00),
		"sections reversed": append(append([]byte("\x00asm\x01\x00\x00\x00"), 0x03, 0x01, 0x00), 0x01, 0x01, 0x00),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := instrument(b, 16); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v, want errMalformed", err)
			}
		})
	}
}

// FuzzInstrument checks that the rewrite never panics, and that a module
// wazero accepts stays acceptable once rewritten.
func FuzzInstrument(f *testing.F) {
	f.Add(goodModule())
	f.Add(semanticsModule())
	f.Add(scanModule())
	for _, tc := range hostileCases() {
		f.Add(tc.module())
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, info, err := instrument(b, 16)
		if err != nil || out == nil {
			return
		}
		if info == nil {
			t.Fatal("no module info")
		}
		orig, err := rt.CompileModule(ctx, b)
		if err != nil {
			return
		}
		orig.Close(ctx)
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its rewrite: %v", err)
		}
		cm.Close(ctx)
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzInstrument when
// MOAT_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MOAT_WRITE_SEEDS") == "" {
		t.Skip("set MOAT_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzInstrument")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{"good": goodModule(), "semantics": semanticsModule(), "scan": scanModule()}
	for i, tc := range hostileCases() {
		seeds[fmt.Sprintf("hostile%02d", i)] = tc.module()
	}
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInstrumentControlFlow runs loops through the rewrite's wrapping
// (instrument.go): results, branches out of a loop to outer labels (shifted
// past the wrappers), br_table, return, a loop with parameters (which keeps
// its tick inside) and a guest call in a loop. Each loop runs long enough
// to run out of fuel many times, so the guest leaves and re-enters it, and
// must still compute the same result as without the rewrite.
func TestInstrumentControlFlow(t *testing.T) {
	const n = 400000 // iterations: dozens of ticks at 1 MiB of fuel
	const (
		nArg = 0 // f(n): the parameter
		acc  = 1 // locals
		i    = 2
		k    = 3
	)
	add := func(local int, v []byte) []byte { // local += v
		return append(append(append(lget(local), v...), 0x6a), lset(local)...)
	}
	cases := []struct {
		name string
		body func(m *tModule) [][]byte
		want uint32
	}{
		{"loop with a result", func(*tModule) [][]byte {
			return [][]byte{
				{0x03, tI32}, add(acc, lget(i)), add(i, i32c(1)), lget(i), lget(nArg), {0x49, 0x0d, 0x00}, lget(acc), {0x0b},
			}
		}, uint32(uint64(n) * (n - 1) / 2 % (1 << 32))},
		{"branch out of a loop with a value", func(*tModule) [][]byte {
			return [][]byte{
				{0x02, tI32, 0x03, 0x40}, add(i, i32c(1)), lget(i), lget(nArg), {0x46, 0x04, 0x40},
				lget(i), i32c(7), {0x6c, 0x0c, 0x02, 0x0b}, // i*7, br 2 (out of if and loop)
				{0x0c, 0x00, 0x0b}, i32c(-1), {0x0b},
			}
		}, n * 7},
		{"br_table out of nested loops", func(*tModule) [][]byte {
			return [][]byte{
				{0x02, 0x40, 0x03, 0x40}, i32c(0), lset(k), // block $exit, loop $outer, k = 0
				{0x03, 0x40}, add(acc, i32c(1)), add(k, i32c(1)), lget(k), i32c(1000), {0x49, 0x0d, 0x00, 0x0b},
				add(i, i32c(1)), lget(i), i32c(n / 1000), {0x4f, 0x0e, 0x01, 0x00, 0x01, 0x00}, // br_table [$outer $exit] $outer
				{0x0b, 0x0b}, lget(acc),
			}
		}, n},
		{"return from a loop", func(*tModule) [][]byte {
			return [][]byte{
				{0x03, 0x40}, add(i, i32c(1)), lget(i), lget(nArg), {0x46, 0x04, 0x40}, lget(i), i32c(3), {0x6c, 0x0f, 0x0b},
				{0x0c, 0x00, 0x0b}, i32c(-1),
			}
		}, n * 3},
		{"loop with a parameter", func(m *tModule) [][]byte {
			bt := byte(m.typ([]byte{tI32}, []byte{tI32}))
			return [][]byte{
				lget(nArg), {0x03, bt}, i32c(1), {0x6b, 0x22, i}, add(acc, i32c(2)), lget(i), {0x0d, 0x00, 0x0b},
				{0x1a}, lget(acc),
			}
		}, n * 2},
		{"guest call in a loop", func(m *tModule) [][]byte {
			double := m.fn([]byte{tI32}, []byte{tI32}, nil, lget(0), lget(0), []byte{0x6a})
			return [][]byte{
				{0x03, 0x40}, add(acc, append(lget(i), call(double)...)), add(i, i32c(1)), lget(i), lget(nArg), {0x49, 0x0d, 0x00, 0x0b},
				lget(acc),
			}
		}, uint32(uint64(n) * (n - 1) % (1 << 32))},
	}
	r := newRuntime(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := abiModule().finishABI()
			f := m.fn([]byte{tI32}, []byte{tI32}, []byte{tI32, tI32, tI32}, tc.body(m)...)
			// moat_input: if f(n) != want { return an out-of-bounds verdict }
			body := append(append(i32c(n), call(f)...), append(i32c(int32(tc.want)), 0x47, 0x04, 0x40)...)
			body = append(append(body, packed(0xfffffff0, 8)...), 0x0f, 0x0b)
			body = append(body, i64c(0)...)
			p := load(t, r, "flow", m.hook("moat_input", nil, body).bytes(), Limits{Timeout: 5 * time.Second})
			if v, err := p.Call(context.Background(), input("x")); err != nil || v.Action != "allow" {
				t.Fatalf("got %+v, %v; want allow (f(%d) = %d)", v, err, n, tc.want)
			}
		})
	}
}
