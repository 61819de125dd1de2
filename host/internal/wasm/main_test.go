package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

// goGuest is the SDK test plugin (testdata/goguest), built once in TestMain.
var goGuest []byte

// cacheDir is the compilation cache shared by the tests (and kept between
// runs, so the Go guest compiles cold only once).
var cacheDir = filepath.Join(os.TempDir(), "moat-wasm-test-cache")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moat-wasm-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := filepath.Join(dir, "goguest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/goguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the Go guest: %v\n%s", err, b)
		os.Exit(1)
	}
	if goGuest, err = os.ReadFile(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := NewRuntime(context.Background(), cacheDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func load(t testing.TB, r *Runtime, name string, b []byte, lim Limits) *Plugin {
	t.Helper()
	p, err := r.Load(context.Background(), name, b, lim)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func input(text string) *abi.Request {
	return &abi.Request{Phase: abi.PhaseInput, Text: text}
}
