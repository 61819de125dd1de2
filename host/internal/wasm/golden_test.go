package wasm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/hostile/*.wasm")

// hostileModules are the hand-written hostile plugins kept as files in
// testdata/hostile, for tests in other packages (e2e runs them through a
// real moat) that cannot use this package's assembler.
func hostileModules() map[string][]byte {
	verdict := func(v string) []byte {
		m := abiModule().finishABI()
		return m.hook("moat_input", nil, m.verdictAt(256, v)).bytes()
	}
	foreign := abiModule()
	foreign.importFunc("env", "system", []byte{tI32}, []byte{tI32})
	return map[string][]byte{
		"loop.wasm":           loopModule(),
		"recursion.wasm":      recursionModule(),
		"memory-grow.wasm":    memoryGrowModule(),
		"unreachable.wasm":    abiModule().finishABI().hook("moat_input", nil, []byte{0x00}).bytes(),
		"bad-json.wasm":       verdict("this is not json"),
		"unknown-action.wasm": verdict(`{"action":"explode"}`),
		"good.wasm":           goodModule(),
		"no-hook.wasm":        abiModule().finishABI().bytes(),
		"foreign-import.wasm": foreign.finishABI().hook("moat_input", nil, i64c(0)).bytes(),
	}
}

// TestHostileModuleFiles keeps testdata/hostile in step with the
// assembler (go test -run TestHostileModuleFiles -update rewrites them).
func TestHostileModuleFiles(t *testing.T) {
	for name, b := range hostileModules() {
		path := filepath.Join("testdata", "hostile", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is not what the assembler writes (err %v); run go test -run TestHostileModuleFiles -update", path, err)
		}
	}
}
