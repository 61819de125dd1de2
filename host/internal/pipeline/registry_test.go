package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// guestPath is the SDK test plugin of package wasm, built in TestMain.
var guestPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moat-pipeline-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guestPath = filepath.Join(dir, "goguest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", guestPath, "../wasm/testdata/goguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the Go guest: %v\n%s", err, b)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sha(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func parse(t *testing.T, toml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(toml), filepath.Join(t.TempDir(), "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func natives(name string) (in, out func(abi.Request) abi.Verdict, ok bool) {
	if name != "upper" {
		return nil, nil, false
	}
	return func(r abi.Request) abi.Verdict {
		return abi.ModifyVerdict(strings.ToUpper(r.Text), "upper")
	}, nil, true
}

func newRT(t *testing.T) *wasm.Runtime {
	rt, err := wasm.NewRuntime(context.Background(), filepath.Join(os.TempDir(), "moat-wasm-test-cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func TestRegistry(t *testing.T) {
	rt := newRT(t)
	ctx := context.Background()
	cfg := parse(t, fmt.Sprintf(`
[upstream]
base_url = "http://127.0.0.1:1"
[pipeline]
input = ["redact", "upper"]
[[plugins]]
name = "redact"
path = %q
sha256 = %q
timeout_ms = 2000
pool_size = 1
config = { word = "secret" }
[[plugins]]
name = "upper"
builtin = "upper"
`, guestPath, sha(t, guestPath)))
	reg, err := NewRegistry(ctx, cfg, rt, natives, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	chain, err := reg.Chain(cfg.Pipeline.Input)
	if err != nil {
		t.Fatal(err)
	}
	text, recs, err := chain.Run(ctx, abi.PhaseInput, "a secret b", abi.Context{})
	if err != nil || text != "A  B" || len(recs) != 2 || recs[0].Action != abi.Modify {
		t.Fatalf("text %q, records %+v, err %v", text, recs, err)
	}
	_, _, err = chain.Run(ctx, abi.PhaseInput, "forbidden", abi.Context{})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Plugin != "redact" {
		t.Fatalf("err %v, want a reject by redact", err)
	}
	if _, err := reg.Chain([]string{"nope"}); err == nil {
		t.Error("unknown plugin in a chain accepted")
	}
	if _, err := reg.PhaseChain(abi.PhaseOutput, []string{"redact"}); err == nil {
		t.Error("input-only plugin accepted in an output chain")
	}
}

func TestRegistryRefuses(t *testing.T) {
	rt := newRT(t)
	ctx := context.Background()
	good := sha(t, guestPath)
	tests := []struct {
		name, toml string
		want       string
		wantErr    error
	}{
		{
			name:    "sha256 mismatch",
			toml:    fmt.Sprintf("[[plugins]]\nname = \"p\"\npath = %q\nsha256 = %q\n", guestPath, strings.Repeat("ab", 32)),
			wantErr: ErrPinMismatch,
		},
		{
			name: "plugin lacking the phase's hook",
			toml: fmt.Sprintf("[pipeline]\noutput = [\"p\"]\n[[plugins]]\nname = \"p\"\npath = %q\nsha256 = %q\n", guestPath, good),
			want: `pipeline.output names plugin "p", which has no output hook`,
		},
		{
			name: "native plugin lacking the phase's hook",
			toml: "[pipeline]\noutput = [\"u\"]\n[[plugins]]\nname = \"u\"\nbuiltin = \"upper\"\n",
			want: "has no output hook",
		},
		{
			name: "unknown builtin",
			toml: "[[plugins]]\nname = \"u\"\nbuiltin = \"nope\"\n",
			want: `unknown built-in "nope"`,
		},
		{
			name: "builtin as wasm without module",
			toml: "[[plugins]]\nname = \"u\"\nbuiltin = \"upper\"\nruntime = \"wasm\"\n",
			want: "has no embedded module in this binary",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "[upstream]\nbase_url = \"http://127.0.0.1:1\"\n"+tt.toml)
			_, err := NewRegistry(ctx, cfg, rt, natives, func(string) ([]byte, bool) { return nil, false })
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v / %q", err, tt.wantErr, tt.want)
			}
		})
	}
}

func TestRegistryEmbeddedModule(t *testing.T) {
	rt := newRT(t)
	ctx := context.Background()
	code, err := os.ReadFile(guestPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, "[upstream]\nbase_url = \"http://127.0.0.1:1\"\n[pipeline]\ninput = [\"r\"]\n[[plugins]]\nname = \"r\"\nbuiltin = \"redact\"\nruntime = \"wasm\"\ntimeout_ms = 2000\npool_size = 1\nconfig = { word = \"x\" }\n")
	reg, err := NewRegistry(ctx, cfg, rt, natives, func(name string) ([]byte, bool) { return code, name == "redact" })
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	chain, _ := reg.Chain([]string{"r"})
	if text, _, err := chain.Run(ctx, abi.PhaseInput, "axb", abi.Context{}); err != nil || text != "ab" {
		t.Fatalf("%q %v", text, err)
	}
}
