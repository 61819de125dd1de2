package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/server"
)

// TestConfigCheckRefusesWhatServeRefuses: `moat config check` (through
// server.CheckPlugins) loads plugins with serve's own code, so a module
// serve refuses at start is refused by the check with the same message,
// and a config serve accepts passes.
func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, file, sha, want string
	}{
		{"no hook", "no-hook.wasm", "", "exports no hook"},
		{"foreign import", "foreign-import.wasm", "", `imports function "system" from module "env"`},
		{"pin mismatch", "good.wasm", strings.Repeat("ab", 32), "sha256 pin mismatch"},
		{"accepted", "good.wasm", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			block := hostilePlugin(t, dir, tc.file, "")
			if tc.sha != "" {
				i := strings.Index(block, "sha256 = ")
				j := strings.Index(block[i:], "\n")
				block = block[:i] + fmt.Sprintf("sha256 = %q", tc.sha) + block[i+j:]
			}
			keyFile := filepath.Join(dir, "anthropic.key")
			if err := os.WriteFile(keyFile, []byte(fakeUpstreamKey("check")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfgText := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\napi_key_file = %q\n[audit]\npath = %q\n[pipeline]\ninput = [\"hostile\"]\n%s",
				keyFile, filepath.Join(dir, "audit.jsonl"), block)
			path := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			checkErr := server.CheckPlugins(context.Background(), cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			serveErr := make(chan error, 1)
			go func() {
				serveErr <- server.Run(ctx, server.Options{ConfigPath: path, Stdout: &syncBuffer{}, Ready: func(string, string) { close(ready) }})
			}()
			var runErr error
			select {
			case <-ready:
				cancel()
				<-serveErr
			case runErr = <-serveErr:
			}
			if tc.want == "" {
				if checkErr != nil || runErr != nil {
					t.Fatalf("check: %v; serve: %v; want both to accept", checkErr, runErr)
				}
				return
			}
			if checkErr == nil || !strings.Contains(checkErr.Error(), tc.want) {
				t.Fatalf("check: %v, want a refusal naming %q", checkErr, tc.want)
			}
			if runErr == nil || runErr.Error() != checkErr.Error() {
				t.Fatalf("serve refused with %v; check with %v; want the same message", runErr, checkErr)
			}
		})
	}
}
