package config_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/server"
)

// problemsDir holds one config per problem, each with the text moat
// reports for it in <name>.golden ("ok" for a config with none).
const problemsDir = "testdata/problems"

// TestProblems runs every config in testdata/problems through `moat config
// check` (server.CheckFile) and through `moat serve` (server.Run), and
// wants the golden text from both: check refuses exactly what serve
// refuses, with the same message. Run with -update to rewrite the goldens.
func TestProblems(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(problemsDir, "*.toml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("no problem configs in %s: %v", problemsDir, err)
	}
	t.Setenv("ANTHROPIC_API_KEY", "test-upstream-key-not-real")
	update := flag.Lookup("update")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			got := "ok"
			if _, err := server.CheckFile(context.Background(), file); err != nil {
				got = err.Error()
			}
			if update != nil && update.Value.String() == "true" {
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden (run with -update): %v", err)
			}
			want := strings.TrimSuffix(string(b), "\n")
			if (name == "ok") != (want == "ok") {
				t.Fatalf("%s: only ok.toml may expect no problem; golden says %q", golden, want)
			}
			if got != want {
				t.Fatalf("config check:\n got: %s\nwant: %s", got, want)
			}
			if want == "ok" {
				return
			}
			if serveErr := serveRefusal(t, file); serveErr != want {
				t.Fatalf("serve refused differently from check:\nserve: %s\ncheck: %s", serveErr, want)
			}
		})
	}
}

// serveRefusal starts `moat serve` on a copy of file in a temporary
// directory (so that the audit trail and local keys land there) and
// returns its error with the copy's path written as file's. A config serve
// accepts returns "serve started".
func serveRefusal(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := false
	err = server.Run(ctx, server.Options{
		ConfigPath: tmp,
		Stdout:     io.Discard,
		Logger:     slog.New(slog.DiscardHandler),
		Override: func(c *config.Config) {
			c.Server.Listen = "127.0.0.1:0"
			c.Admin.Listen = ""
		},
		Ready: func(string, string) { started = true; cancel() },
	})
	if started || err == nil {
		return "serve started"
	}
	return strings.ReplaceAll(err.Error(), tmp, file)
}
