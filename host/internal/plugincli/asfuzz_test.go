package plugincli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/moat-gateway/moat/sdk/abi"
)

// guest is one instance of the echo fixture, called through the raw ABI
// (plain wazero: the SDK's request reader is what is under test here).
type guest struct {
	mod api.Module
}

func newGuest(t testing.TB) *guest {
	t.Helper()
	code := loadModule(t, "build/echo.wasm")
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithMemoryLimitPages(1024))
	t.Cleanup(func() { rt.Close(ctx) })
	i32 := api.ValueTypeI32
	abort := api.GoModuleFunc(func(context.Context, api.Module, []uint64) { panic("abort") })
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithGoModuleFunction(abort, []api.ValueType{i32, i32, i32, i32}, nil).Export("abort").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	nop := api.GoModuleFunc(func(context.Context, api.Module, []uint64) {})
	if _, err := rt.NewHostModuleBuilder("moat").NewFunctionBuilder().
		WithGoModuleFunction(nop, []api.ValueType{i32, i32, i32}, nil).Export("log").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	return &guest{mod: mod}
}

// call sends raw request bytes to moat_input and returns the verdict JSON
// (nil for the ABI's 0).
func (g *guest) call(raw []byte) ([]byte, error) {
	ctx := context.Background()
	res, err := g.mod.ExportedFunction("moat_alloc").Call(ctx, uint64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("moat_alloc: %w", err)
	}
	ptr := uint32(res[0])
	if ptr == 0 || !g.mod.Memory().Write(ptr, raw) {
		return nil, fmt.Errorf("moat_alloc(%d) = %d", len(raw), ptr)
	}
	res, err = g.mod.ExportedFunction("moat_input").Call(ctx, uint64(ptr), uint64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("moat_input: %w", err)
	}
	if res[0] == 0 {
		return nil, nil
	}
	p, n := abi.UnpackResult(res[0])
	b, ok := g.mod.Memory().Read(p, n)
	if !ok {
		return nil, fmt.Errorf("verdict out of bounds")
	}
	return bytes.Clone(b), nil
}

// strictDecode decodes a request the way the SDK must: the ABI v2 layout
// exactly, and a config that is empty or one JSON value. ok is false where
// the SDK must refuse the request.
func strictDecode(raw []byte) (text string, ok bool) {
	r, err := abi.DecodeRequestV2(raw)
	if err != nil {
		return "", false
	}
	if len(r.Config) > 0 && !json.Valid(r.Config) {
		return "", false
	}
	return r.Text, true
}

// FuzzRequestDecoding feeds arbitrary bytes to the SDK's request reader:
// it must never trap, must always answer a valid verdict, must refuse what
// is not a well-formed v2 request, and must pass valid UTF-8 text through
// exactly.
func FuzzRequestDecoding(f *testing.F) {
	for _, r := range []abi.Request{
		{Phase: abi.PhaseInput, Text: "hello"},
		{Phase: abi.PhaseOutput, Text: "é😀", Config: []byte(`{"k":[1,2.5e3,true,null]}`), Context: abi.Context{Route: "r", Kind: abi.KindText}},
		{Phase: abi.PhaseInput, Text: "x", Config: []byte(`[[[[]]]]`)},
		{Phase: abi.PhaseInput, Text: "\xff\xc0\xed\xa0\x80"},
		{Phase: abi.PhaseInput, Text: "x", Config: []byte(`01`)},
	} {
		b, err := abi.AppendRequestV2(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"phase":"input","text":"x"}`))
	g := newGuest(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, ok := strictDecode(raw)
		if ok && strings.HasPrefix(want, "!") {
			return // the fixture's commands
		}
		out, err := g.call(raw)
		if err != nil {
			t.Fatalf("request %q: %v", raw, err)
		}
		v, err := abi.DecodeVerdictV2(out)
		if err != nil {
			t.Fatalf("request %q: verdict %q: %v", raw, out, err)
		}
		deep := bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) > 100
		switch {
		case ok && v.Action == abi.Modify:
			if utf8.ValidString(want) && v.Text != want {
				t.Fatalf("request %q: text %q, sent %q", raw, v.Text, want)
			}
		case !ok && v.Action == abi.Reject && strings.HasPrefix(v.Reason, "moat sdk: malformed request: "):
		case deep: // the SDK caps nesting at 128, Go at 10000
		default:
			t.Fatalf("request %q (valid per Go: %v): verdict %+v", raw, ok, v)
		}
	})
}

// FuzzTextRoundTrip sends any text (made valid UTF-8, as the host sends)
// and checks it comes back unchanged with its finding spanning all of its
// UTF-8 bytes.
func FuzzTextRoundTrip(f *testing.F) {
	for _, s := range []string{"", "hello", "héllo", "日本語", "😀👍🏽", "a\x00b\x1f", "<|im_start|>&", "\u2028", "\xff\xfe", "\"\\"} {
		f.Add(s)
	}
	g := newGuest(f)
	f.Fuzz(func(t *testing.T, s string) {
		if strings.HasPrefix(s, "!") {
			return
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		raw, err := abi.AppendRequestV2(nil, &abi.Request{Phase: abi.PhaseInput, Text: want})
		if err != nil {
			t.Fatal(err)
		}
		out, err := g.call(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		v, err := abi.DecodeVerdictV2(out)
		if err != nil {
			t.Fatalf("%q: verdict %q: %v", raw, out, err)
		}
		if v.Action != abi.Modify || v.Text != want {
			t.Fatalf("%q: got %s %q, want %q", raw, v.Action, v.Text, want)
		}
		if len(v.Findings) != 1 || v.Findings[0].End != len(want) {
			t.Fatalf("%q: findings %+v, want one ending at %d", raw, v.Findings, len(want))
		}
	})
}
