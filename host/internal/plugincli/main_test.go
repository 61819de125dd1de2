package plugincli

import (
	"os"
	"testing"
)

// TestMain shares one compilation cache across the tests, as the CLI
// shares one across runs, so each module compiles once.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moat-plugincli-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
