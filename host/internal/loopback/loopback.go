// Package loopback is the test harness that runs moat on 127.0.0.1 in
// front of the in-repo Claude stand-in: the stand-in with its upstream key
// in a file, a client key, the base config text, and a runner that starts
// moat, waits for its listeners and stops it when the test ends.
//
// It is a non-test package so that the e2e, console and gateway tests share
// one copy. It does not import host/internal/server (the gateway's own
// tests could not import it: server imports gateway), so a caller hands
// Serve a closure over server.Run.
package loopback

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/logbuf"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// AdminTokenEnv is the environment variable the base config names as the
// admin token's source; Env.Getenv answers it with Env.AdminToken.
const AdminTokenEnv = "MOAT_LOOPBACK_ADMIN_TOKEN"

// UpstreamKey returns a recognisable Anthropic-shaped key with tag in it,
// assembled at run time so no key-shaped literal is committed.
func UpstreamKey(tag string) string {
	return "sk-" + "ant-" + "api03-" + "MOATCANARY" + tag + strings.Repeat("Zq9", 20) + "-AA"
}

// Env is a temporary directory, a running stand-in that accepts only
// UpstreamKey (also written to KeyFile) and a fresh client key.
type Env struct {
	// Dir is the test's temporary directory.
	Dir string
	// Standin is the Claude stand-in on 127.0.0.1, closed when the test ends.
	Standin *standin.Server
	// UpstreamKey is the only key the stand-in accepts; KeyFile holds it.
	UpstreamKey, KeyFile string
	// ClientKey is a new moat client key; ClientHash is its SHA-256 in hex.
	ClientKey, ClientHash string
	// AdminToken is the admin token the base config reads from AdminTokenEnv.
	AdminToken string
}

// New makes an Env: tag goes into the upstream key (so a leak names its
// test); si configures the stand-in (its APIKey is set to the upstream key).
func New(t testing.TB, tag string, si standin.Options) *Env {
	t.Helper()
	e := &Env{Dir: t.TempDir(), UpstreamKey: UpstreamKey(tag)}
	si.APIKey = e.UpstreamKey
	e.Standin = standin.New(si)
	if err := e.Standin.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("starting stand-in: %v", err)
	}
	t.Cleanup(func() { _ = e.Standin.Close() })
	e.KeyFile = filepath.Join(e.Dir, "anthropic.key")
	if err := os.WriteFile(e.KeyFile, []byte(e.UpstreamKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e.ClientKey, e.ClientHash = key, hash
	e.AdminToken = "admin-token-" + hash[:16]
	return e
}

// AuditPath is where the base config puts the audit trail.
func (e *Env) AuditPath() string { return filepath.Join(e.Dir, "audit", "audit.jsonl") }

// Getenv answers AdminTokenEnv with the admin token and anything else from
// the process environment.
func (e *Env) Getenv(k string) string {
	if k == AdminTokenEnv {
		return e.AdminToken
	}
	return os.Getenv(k)
}

// Config is what a test adds to the base config; every field is TOML text
// and may be empty.
type Config struct {
	// Top is placed before any table.
	Top string
	// Server, Upstream, Admin and Audit go inside their tables.
	Server, Upstream, Admin, Audit string
	// UpstreamURL, when set, replaces the stand-in as moat's upstream.
	UpstreamURL string
	// Client goes inside the [[clients]] block of the client "app".
	Client string
	// NoClient leaves [[clients]] out (first-start key generation).
	NoClient bool
	// Extra is appended after [[clients]].
	Extra string
}

// TOML returns the base config with c's additions: loopback listeners, the
// stand-in as upstream with its key file, the admin token from
// AdminTokenEnv, the audit trail in Dir and the client "app".
func (e *Env) TOML(c Config) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nenvironment = \"test\"\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n%s\n", c.Top, c.Server)
	up := c.UpstreamURL
	if up == "" {
		up = e.Standin.URL()
	}
	fmt.Fprintf(&b, "[upstream]\nbase_url = %q\napi_key_file = %q\ntimeout = \"10s\"\n%s\n", up, e.KeyFile, c.Upstream)
	fmt.Fprintf(&b, "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = %q\n%s\n", AdminTokenEnv, c.Admin)
	fmt.Fprintf(&b, "[audit]\npath = %q\n%s\n", e.AuditPath(), c.Audit)
	if !c.NoClient {
		fmt.Fprintf(&b, "[[clients]]\nid = \"app\"\nkey_sha256 = %q\n%s\n", e.ClientHash, c.Client)
	}
	b.WriteString(c.Extra)
	return []byte(b.String())
}

// WriteConfig writes cfg as Dir/config.toml and returns its path.
func (e *Env) WriteConfig(t testing.TB, cfg []byte) string {
	t.Helper()
	path := filepath.Join(e.Dir, "config.toml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// RunFunc runs moat until ctx ends, calling ready with the public and admin
// listeners' addresses (host:port) once both listen: a closure over
// server.Run.
type RunFunc func(ctx context.Context, ready func(public, admin string)) error

// Moat is one moat started by Serve.
type Moat struct {
	// Public and Admin are the listeners' addresses (host:port).
	Public, Admin string

	t      testing.TB
	cancel context.CancelFunc
	done   chan error
}

// StartTimeout is how long Serve waits for moat's listeners, and
// StopTimeout how long Stop waits for moat to return.
const (
	StartTimeout = 30 * time.Second
	StopTimeout  = 20 * time.Second
)

// Serve runs moat with run until the test ends (or Stop). The test fails at
// once if moat returns or does not listen within StartTimeout; logs (may be
// nil) and cfg (may be nil) are shown in that failure.
func Serve(t testing.TB, run RunFunc, logs *logbuf.Buffer, cfg []byte) *Moat {
	t.Helper()
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Moat{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() {
		m.done <- run(ctx, func(p, a string) { ready <- [2]string{p, a} })
	}()
	logText := func() string {
		if logs == nil {
			return ""
		}
		return logs.String()
	}
	select {
	case addrs := <-ready:
		m.Public, m.Admin = addrs[0], addrs[1]
	case err := <-m.done:
		cancel()
		t.Fatalf("moat did not start: %v\nlogs:\n%s\nconfig:\n%s", err, logText(), cfg)
	case <-time.After(StartTimeout):
		cancel()
		t.Fatalf("moat did not start in %v\nlogs:\n%s", StartTimeout, logText())
	}
	t.Cleanup(m.Stop)
	return m
}

// Stop stops moat and fails the test if it returned an error or did not
// stop within StopTimeout. A second Stop returns at once.
func (m *Moat) Stop() {
	// Clients built on http.DefaultTransport may hold a connection they
	// dialed but never sent a request on; net/http's Shutdown waits 5 s for
	// such a connection before it counts as idle, as long as the base
	// config's shutdown_grace. Close them first.
	http.DefaultClient.CloseIdleConnections()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			m.t.Errorf("moat exited with: %v", err)
		}
	case <-time.After(StopTimeout):
		m.t.Errorf("moat did not stop in %v", StopTimeout)
	}
	m.done <- nil // let a second Stop return at once
}
