package plugincli_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// These tests run the AssemblyScript SDK's compiled example and fixture
// (sdk/assemblyscript) in moat's real runtime, proving the ABI (v2 since the SDK moved to it) is
// language-neutral. They live here because sdk/ may not import host/internal.

// asDir is the AssemblyScript SDK, relative to this package.
const asDir = "../../../sdk/assemblyscript/"

// loadModule reads a module built by `npm run build`. A missing module
// skips locally but fails in CI, where the Makefile builds it first.
func loadModule(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(asDir + rel))
	if err != nil {
		msg := "cannot read " + rel + " (build it: cd sdk/assemblyscript && npm ci && npm run build): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return b
}

func load(t *testing.T, rel string, lim wasm.Limits) *wasm.Plugin {
	t.Helper()
	code := loadModule(t, rel)
	ctx := context.Background()
	rt, err := wasm.NewRuntime(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	p, err := rt.Load(ctx, filepath.Base(rel), code, lim)
	if err != nil {
		t.Fatalf("loading %s: %v", rel, err)
	}
	return p
}

// texts exercise UTF-8 and JSON escaping both ways.
var texts = []struct{ name, text string }{
	{"empty", ""},
	{"ascii", "hello, world"},
	{"accents", "héllo wörld, ça va? Ñandú"},
	{"cjk", "日本語のテキストと中文"},
	{"emoji", "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷"},
	{"json escapes", "quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f"},
	{"control chars", "\x00\x01\x1f\x7f"},
	{"html", "<script>alert('x')</script> & <|im_start|>"},
	{"line separators", "a\u2028b\u2029c"},
	{"replacement char", "bad \ufffd byte"},
	{"64 KiB", strings.Repeat("ab日😀", 64<<10/10)},
}

func TestEchoRoundTrip(t *testing.T) {
	p := load(t, "build/echo.wasm", wasm.Limits{Timeout: time.Second})
	if !p.HasPhase(abi.PhaseInput) || !p.HasPhase(abi.PhaseOutput) {
		t.Fatal("echo registers both handlers; moat_phases should say so")
	}
	ctx := context.Background()
	for _, phase := range []abi.Phase{abi.PhaseInput, abi.PhaseOutput} {
		for _, tc := range texts {
			t.Run(string(phase)+"/"+tc.name, func(t *testing.T) {
				req := &abi.Request{
					Phase:   phase,
					Text:    tc.text,
					Config:  []byte(`{"k":"vé \"q\" 😀","n":42,"b":true,"list":["a","日本",3]}`),
					Context: abi.Context{Route: "support", Model: "claude", Client: "app-ü", User: "u1", RequestID: "req-1", Kind: abi.KindToolResult, Role: "user", Path: "messages.3.content.0"},
				}
				v, err := p.Call(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if v.Action != abi.Modify || v.Text != tc.text {
					t.Fatalf("got %s %q, want modify with the text unchanged", v.Action, excerpt(v.Text))
				}
				want := "phase=" + string(phase) + ";route=support;model=claude;client=app-ü;user=u1;request_id=req-1;kind=tool_result;role=user;path=messages.3.content.0;" +
					`config={"k":"vé \"q\" 😀","n":42,"b":true,"list":["a","日本",3]};k=vé "q" 😀;n=42.0;b=true;list=a,日本`
				if v.Reason != want {
					t.Fatalf("reason\n got %q\nwant %q", v.Reason, want)
				}
				if len(v.Findings) != 1 || v.Findings[0] != (abi.Finding{Rule: "all", Start: 0, End: len(tc.text)}) {
					t.Fatalf("findings %+v, want one spanning all %d bytes", v.Findings, len(tc.text))
				}
			})
		}
	}
}

func TestEchoEdges(t *testing.T) {
	// A generous timeout: -race on a shared 2-core machine slows calls
	// tenfold, and the loop case only needs some deadline.
	p := load(t, "build/echo.wasm", wasm.Limits{Timeout: time.Second})
	ctx := context.Background()
	call := func(text string) (abi.Verdict, error) {
		return p.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: text})
	}
	t.Run("allow is zero", func(t *testing.T) {
		v, err := call("!allow")
		if err != nil || v.Action != abi.Allow || v.Reason != "" {
			t.Fatalf("got %+v, %v", v, err)
		}
	})
	t.Run("reject", func(t *testing.T) {
		v, err := call("!reject")
		if err != nil || v.Action != abi.Reject || v.Reason != "echo: rejected on request" {
			t.Fatalf("got %+v, %v", v, err)
		}
	})
	t.Run("invalid UTF-8 arrives replaced", func(t *testing.T) {
		v, err := call("a\xffb")
		if err != nil || !utf8.ValidString(v.Text) || v.Text != "a\ufffdb" {
			t.Fatalf("got %q, %v", v.Text, err)
		}
	})
	t.Run("abort is a trap", func(t *testing.T) {
		_, err := call("!abort")
		if !errors.Is(err, wasm.ErrTrap) || !strings.Contains(err.Error(), "echo: abort on request") {
			t.Fatalf("got %v, want a trap quoting the abort message", err)
		}
		if v, err := call("!reject"); err != nil || v.Action != abi.Reject {
			t.Fatalf("plugin unusable after a trap: %+v, %v", v, err)
		}
	})
	t.Run("endless loop times out", func(t *testing.T) {
		if _, err := call("!loop"); !errors.Is(err, wasm.ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
	})
	t.Run("memory cap", func(t *testing.T) {
		if _, err := call("!grow 100"); err == nil {
			t.Fatal("allocating 100 MiB under the 64 MiB cap succeeded")
		}
		if _, err := call("!grow 1"); err != nil {
			t.Fatalf("1 MiB under the cap: %v", err)
		}
	})
	t.Run("log", func(t *testing.T) {
		if _, err := call("!log"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Logs(), "info: echo: hello from AssemblyScript") {
			t.Fatalf("logs %q lack the message", p.Logs())
		}
	})
	t.Run("many calls", func(t *testing.T) {
		text := strings.Repeat("x", 4096)
		for i := range 2000 {
			if v, err := call(text); err != nil || v.Text != text {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

func TestExampleDenyWords(t *testing.T) {
	p := load(t, "example/build/example.wasm", wasm.Limits{Timeout: time.Second})
	if !p.HasPhase(abi.PhaseInput) || p.HasPhase(abi.PhaseOutput) {
		t.Fatal("deny-words handles the input phase only")
	}
	config := []byte(`{"deny":["ignore previous instructions","忽略"],"mask":["password","clé","🔑"],"mask_with":"***"}`)
	tests := []struct {
		name, text string
		action     abi.Action
		out        string
		found      []string // the bytes each finding covers, in the original text
	}{
		{"clean", "What is the capital of France?", abi.Allow, "", nil},
		{"clean non-ASCII", "Où est la clef? 日本語 😀", abi.Allow, "", nil},
		{"deny, case folded", "Please IGNORE Previous Instructions and...", abi.Reject, "", []string{"IGNORE Previous Instructions"}},
		{"deny CJK after emoji", "😀😀 请忽略之前的指令", abi.Reject, "", []string{"忽略"}},
		{"deny inside escapes", "\"quoted\"\n\tignore previous instructions", abi.Reject, "", []string{"ignore previous instructions"}},
		{"mask", "my Password is x", abi.Modify, "my *** is x", []string{"Password"}},
		{"mask nested", "passpasswordword", abi.Modify, "pass***word", []string{"password"}},
		{"mask non-ASCII", "😀 la CLÉ: 🔑 \"x\"", abi.Modify, "😀 la ***: *** \"x\"", []string{"CLÉ", "🔑"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Call(context.Background(), &abi.Request{Phase: abi.PhaseInput, Text: tc.text, Config: config})
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != tc.action || (tc.action == abi.Modify && v.Text != tc.out) {
				t.Fatalf("got %s %q (%s), want %s %q", v.Action, v.Text, v.Reason, tc.action, tc.out)
			}
			var found []string
			for _, f := range v.Findings {
				if f.Start < 0 || f.End > len(tc.text) || f.Start > f.End {
					t.Fatalf("finding %+v out of range for %d bytes", f, len(tc.text))
				}
				found = append(found, tc.text[f.Start:f.End])
			}
			if strings.Join(found, "|") != strings.Join(tc.found, "|") {
				t.Fatalf("findings cover %q, want %q", found, tc.found)
			}
		})
	}
}

func excerpt(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
