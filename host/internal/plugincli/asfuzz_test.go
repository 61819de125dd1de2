package plugincli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
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

// strictDecode decodes a request the way the SDK must: exact key names, a
// top-level object, string phase and text, a known phase, an object or
// null context. ok is false where the SDK must refuse the request.
func strictDecode(raw []byte) (text string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return "", false
	}
	var phase string
	if json.Unmarshal(m["phase"], &phase) != nil || (phase != "input" && phase != "output") {
		return "", false
	}
	if t, has := m["text"]; has && json.Unmarshal(t, &text) != nil {
		return "", false
	}
	if c, has := m["context"]; has && !bytes.Equal(c, []byte("null")) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(c, &obj) != nil {
			return "", false
		}
	}
	return text, true
}

// FuzzRequestDecoding feeds arbitrary bytes to the SDK's request reader:
// it must never trap, must always answer a valid verdict, must refuse what
// is not a well-formed request, and must decode the text exactly as Go's
// encoding/json does.
func FuzzRequestDecoding(f *testing.F) {
	for _, s := range []string{
		`{"phase":"input","text":"hello"}`,
		`{"phase":"output","text":"\u00e9\ud83d\ude00\ud83d","config":{"k":[1,2.5e3,true,null]},"context":{"route":"r"}}`,
		`{"phase":"input","text":"a\"b\\c\/d\b\f\n\r\t"}`,
		`{"phase":"input","text":"x","config":[[[[]]]],"extra":{"a":"b"}}`,
		"{\"phase\":\"input\",\"text\":\"\xff\xc0\xed\xa0\x80\"}",
		`{"phase":"input","text":"x",}`,
		`{"phase":"input","text":"x"`,
		`{"phase":"sideways","text":"x"}`,
		`{"phase":"input","text":"x","config":01}`,
	} {
		f.Add([]byte(s))
	}
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
		if !utf8.Valid(out) {
			t.Fatalf("verdict is not UTF-8: %q", out)
		}
		v, err := abi.DecodeVerdict(out)
		if err != nil {
			t.Fatalf("request %q: verdict %q: %v", raw, out, err)
		}
		deep := bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) > 100
		switch {
		case ok && v.Action == abi.Modify:
			if v.Text != want {
				t.Fatalf("request %q: text %q, Go decodes %q", raw, v.Text, want)
			}
		case !ok && v.Action == abi.Reject && strings.HasPrefix(v.Reason, "moat sdk: malformed request: "):
		case deep: // the SDK caps nesting at 128, Go at 10000
		default:
			t.Fatalf("request %q (valid per Go: %v): verdict %+v", raw, ok, v)
		}
	})
}

// escapeAll writes s as a JSON string with every non-ASCII rune escaped
// as \uXXXX (surrogate pairs above U+FFFF).
func escapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r >= 0x7f:
			if r >= 0x10000 {
				hi, lo := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04X`, hi, lo)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzTextRoundTrip sends any text, encoded by Go's encoder and with every
// non-ASCII rune escaped, and checks it comes back unchanged with its
// finding spanning all of its UTF-8 bytes.
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
		goEnc, _ := json.Marshal(s)
		for _, enc := range []string{string(goEnc), escapeAll(want)} {
			raw := []byte(`{"phase":"input","text":` + enc + `}`)
			out, err := g.call(raw)
			if err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
			v, err := abi.DecodeVerdict(out)
			if err != nil {
				t.Fatalf("%q: verdict %q: %v", raw, out, err)
			}
			var goText string
			if err := json.Unmarshal([]byte(enc), &goText); err != nil {
				t.Fatal(err)
			}
			if v.Action != abi.Modify || v.Text != goText {
				t.Fatalf("%q: got %s %q, want %q", raw, v.Action, v.Text, goText)
			}
			if len(v.Findings) != 1 || v.Findings[0].End != len(goText) {
				t.Fatalf("%q: findings %+v, want one ending at %d", raw, v.Findings, len(goText))
			}
		}
	})
}
