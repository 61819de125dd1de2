package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/plan"
)

// cliTrail writes n records with a real audit.Logger under a config file
// and returns the config path, the config and the lines.
func cliTrail(t *testing.T, n int) (string, *config.Config, []string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("[audit]\npath = \"logs/audit.jsonl\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(plan.Audit(cfg.Audit), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := l.Write(context.Background(), &audit.Record{RequestID: fmt.Sprintf("r%d", i), Client: "app", Status: 200, Decision: audit.DecisionAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg.Audit.Path)
	return path, cfg, strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestAuditVerifyExitCodes: moat audit verify --config exits 0 on an intact
// trail and 1, naming the problem, on a cut tail, a cut head and an edited
// record; moat audit checkpoint re-seals a cut trail on purpose.
func TestAuditVerifyExitCodes(t *testing.T) {
	cases := []struct {
		name  string
		cut   func(lines []string) []string
		code  int
		words string
	}{
		{"intact", func(l []string) []string { return l }, 0, "ok: every record is keyed"},
		{"tail cut", func(l []string) []string { return l[:4] }, 1, "cut_tail"},
		{"head cut", func(l []string) []string { return l[2:] }, 1, "cut_head"},
		{"edited", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"client":"app"`, `"client":"bob"`, 1)
			return l
		}, 1, "edited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfgPath, cfg, lines := cliTrail(t, 6)
			os.WriteFile(cfg.Audit.Path, []byte(strings.TrimSuffix(strings.Join(c.cut(lines), ""), "\n")+"\n"), 0o600)
			var out, errb bytes.Buffer
			code := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.words) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, c.code, c.words, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), "records/s") {
				t.Fatalf("no speed reported:\n%s", out.String())
			}
		})
	}
	t.Run("reseal after a deliberate cut", func(t *testing.T) {
		cfgPath, cfg, lines := cliTrail(t, 6)
		os.WriteFile(cfg.Audit.Path, []byte(strings.Join(lines[:4], "")), 0o600)
		var out, errb bytes.Buffer
		if code := run([]string{"audit", "checkpoint", "--config", cfgPath}, &out, &errb); code != 0 {
			t.Fatalf("checkpoint: exit %d\n%s%s", code, out.String(), errb.String())
		}
		out.Reset()
		if code := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errb); code != 0 {
			t.Fatalf("verify after reseal: exit %d\n%s", code, out.String())
		}
	})
	t.Run("usage", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run([]string{"audit"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--config") {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	})
}
