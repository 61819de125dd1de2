package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	input := []string{"redact", "upper"}
	spec := Spec{
		Plugins: []PluginSpec{
			{Name: "redact", Path: guestPath, SHA256: sha(t, guestPath), OnError: "reject",
				Limits: wasm.Limits{Timeout: 2 * time.Second, PoolSize: 1}, Config: json.RawMessage(`{"word":"secret"}`)},
			{Name: "upper", Builtin: "upper", Native: true, OnError: "reject"},
		},
		Chains: []ChainSpec{{Where: "pipeline.input", Phase: abi.PhaseInput, Names: input}},
	}
	reg, err := NewRegistry(ctx, spec, rt, natives, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	chain, err := reg.Chain(input)
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
		name    string
		spec    Spec
		want    string
		wantErr error
	}{
		{
			name:    "sha256 mismatch",
			spec:    Spec{Plugins: []PluginSpec{{Name: "p", Path: guestPath, SHA256: strings.Repeat("ab", 32)}}},
			wantErr: ErrPinMismatch,
		},
		{
			name: "plugin lacking the phase's hook",
			spec: Spec{
				Plugins: []PluginSpec{{Name: "p", Path: guestPath, SHA256: good}},
				Chains:  []ChainSpec{{Where: "pipeline.output", Phase: abi.PhaseOutput, Names: []string{"p"}}},
			},
			want: `pipeline.output names plugin "p", which has no output hook`,
		},
		{
			name: "native plugin lacking the phase's hook",
			spec: Spec{
				Plugins: []PluginSpec{{Name: "u", Builtin: "upper", Native: true}},
				Chains:  []ChainSpec{{Where: "pipeline.output", Phase: abi.PhaseOutput, Names: []string{"u"}}},
			},
			want: "has no output hook",
		},
		{
			name: "chain naming a plugin not configured",
			spec: Spec{Chains: []ChainSpec{{Where: `routes["r"].input`, Phase: abi.PhaseInput, Names: []string{"nope"}}}},
			want: `routes["r"].input names plugin "nope", which is not configured`,
		},
		{
			name: "unknown builtin",
			spec: Spec{Plugins: []PluginSpec{{Name: "u", Builtin: "nope", Native: true}}},
			want: `unknown built-in "nope"`,
		},
		{
			name: "builtin as wasm without module",
			spec: Spec{Plugins: []PluginSpec{{Name: "u", Builtin: "upper"}}},
			want: "has no embedded module in this binary",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(ctx, tt.spec, rt, natives, func(string) ([]byte, bool) { return nil, false })
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
	spec := Spec{
		Plugins: []PluginSpec{{Name: "r", Builtin: "redact", OnError: "reject",
			Limits: wasm.Limits{Timeout: 2 * time.Second, PoolSize: 1}, Config: json.RawMessage(`{"word":"x"}`)}},
		Chains: []ChainSpec{{Where: "pipeline.input", Phase: abi.PhaseInput, Names: []string{"r"}}},
	}
	reg, err := NewRegistry(ctx, spec, rt, natives, func(name string) ([]byte, bool) { return code, name == "redact" })
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	chain, _ := reg.Chain([]string{"r"})
	if text, _, err := chain.Run(ctx, abi.PhaseInput, "axb", abi.Context{}); err != nil || text != "ab" {
		t.Fatalf("%q %v", text, err)
	}
}
