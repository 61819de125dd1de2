package loopback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestBaseConfigIsValid: the base config, with and without a client and
// with each addition, is a config moat accepts, naming the stand-in, the
// key file, the admin token's variable and the audit path.
func TestBaseConfigIsValid(t *testing.T) {
	e := New(t, "base", standin.Options{})
	cases := []struct {
		name string
		c    Config
	}{
		{"base", Config{}},
		{"no client", Config{NoClient: true}},
		{"additions", Config{Top: "# top", Server: "max_body_bytes = 1000", Upstream: `connect_timeout = "1s"`,
			Admin: "pprof = true", Audit: `content = "full"`, Client: `models = ["m"]`,
			UpstreamURL: "http://127.0.0.1:9", Extra: "[retry]\nattempts = 1\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse(e.TOML(tc.c), e.WriteConfig(t, nil))
			if err != nil {
				t.Fatalf("base config refused: %v\n%s", err, e.TOML(tc.c))
			}
			wantURL := e.Standin.URL()
			if tc.c.UpstreamURL != "" {
				wantURL = tc.c.UpstreamURL
			}
			if cfg.Upstream.BaseURL != wantURL || cfg.Upstream.APIKeyFile != e.KeyFile ||
				cfg.Admin.TokenEnv != AdminTokenEnv || cfg.Audit.Path != e.AuditPath() {
				t.Errorf("config does not name the env: %+v", cfg)
			}
			if got := len(cfg.Clients); got != map[bool]int{true: 0, false: 1}[tc.c.NoClient] {
				t.Errorf("%d clients", got)
			}
		})
	}
	if e.Getenv(AdminTokenEnv) != e.AdminToken || e.AdminToken == "" {
		t.Error("Getenv does not answer the admin token")
	}
}

// fatalTB records Fatalf instead of stopping the goroutine.
type fatalTB struct {
	testing.TB
	fatal    string
	cleanups []func()
}

func (f *fatalTB) Helper()                           {}
func (f *fatalTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fatalTB) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }

// TestServe: Serve fails the test when moat returns before listening, and
// otherwise reports its addresses and stops it once, however often Stop
// is called.
func TestServe(t *testing.T) {
	t.Run("moat fails to start", func(t *testing.T) {
		f := &fatalTB{TB: t}
		Serve(f, func(context.Context, func(string, string)) error { return errors.New("bad config") }, nil, []byte("x = 1"))
		if !strings.Contains(f.fatal, "moat did not start: bad config") || !strings.Contains(f.fatal, "x = 1") {
			t.Fatalf("Fatalf %q", f.fatal)
		}
	})
	t.Run("runs until stopped", func(t *testing.T) {
		stopped := make(chan struct{})
		m := Serve(t, func(ctx context.Context, ready func(string, string)) error {
			ready("127.0.0.1:1", "127.0.0.1:2")
			<-ctx.Done()
			close(stopped)
			return nil
		}, nil, nil)
		if m.Public != "127.0.0.1:1" || m.Admin != "127.0.0.1:2" {
			t.Fatalf("addresses %q %q", m.Public, m.Admin)
		}
		m.Stop()
		select {
		case <-stopped:
		case <-time.After(time.Second):
			t.Fatal("moat's context was not canceled")
		}
		m.Stop() // and again at cleanup: returns at once
	})
}
