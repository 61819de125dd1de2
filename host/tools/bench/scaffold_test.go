package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScaffoldPlugins builds the two user plugins the way the benchmark
// does (moat plugin new, then moat plugin build, offline) and checks each
// with moat plugin verify: a v2 module whose calls pass.
func TestScaffoldPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two plugins")
	}
	root := repoRoot(t)
	moatBin := filepath.Join(root, "bin", "moat")
	if _, err := os.Stat(moatBin); err != nil {
		t.Skip("bin/moat not built (make build)")
	}
	e := &env{opts: &Options{Root: root, MoatBin: moatBin, Progress: io.Discard}}
	for _, tc := range []struct{ name, lang string }{{userGoName, "go"}, {userASName, "as"}} {
		t.Run(tc.lang, func(t *testing.T) {
			if _, err := exec.LookPath(map[string]string{"go": goTool(), "as": "npm"}[tc.lang]); err != nil {
				t.Skipf("no toolchain for %s: %v", tc.lang, err)
			}
			out := filepath.Join(t.TempDir(), tc.name+".wasm")
			pf := e.scaffoldPlugin(context.Background(), tc.name, tc.lang, out)
			if pf.na != "" {
				t.Fatal(pf.na)
			}
			if pf.path != out || len(pf.sha256) != 64 {
				t.Fatalf("got %+v", pf)
			}
			b, err := exec.Command(moatBin, "plugin", "verify", out).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "v2 (moat_abi_v2)") {
				t.Fatalf("moat plugin verify %s: %v\n%s", out, err, b)
			}
		})
	}
}
