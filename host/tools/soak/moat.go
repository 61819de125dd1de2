package soak

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/internal/server"
)

// adminTokenEnv is the environment variable moat reads its admin token from.
const adminTokenEnv = "MOAT_SOAK_ADMIN_TOKEN"

// Client rates and budgets of the generated config.
const (
	// noisyRate limits the "noisy" client, so it sees some 429s.
	noisyRate       = 5
	noisyRatePeriod = time.Second
	// spenderUSD is the daily budget of the user "spender".
	spenderUSD = 0.02
	// globalUSD is the global daily budget; never reached.
	globalUSD = 1000.0
	// maxTokens is every request's max_tokens.
	maxTokens = 64
	// loopTimeoutMS is the hostile plugin's timeout_ms.
	loopTimeoutMS = 50
)

// setup is what a run needs to talk to the moat it started.
type setup struct {
	dir       string
	cfgPath   string
	auditPath string
	appKey    string
	noisyKey  string
	adminTok  string
	redisURL  string
}

// writeConfig writes the plugin and the config moat runs on.
func (s *setup) writeConfig(upstreamURL, upstreamKey, appHash, noisyHash string) error {
	mod := LoopModule()
	if err := os.WriteFile(filepath.Join(s.dir, "looper.wasm"), mod, 0o600); err != nil {
		return fmt.Errorf("writing the hostile plugin: %w", err)
	}
	sum := sha256.Sum256(mod)
	keyFile := filepath.Join(s.dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte(upstreamKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the upstream key: %w", err)
	}
	store := `store = "memory"`
	if s.redisURL != "" {
		store = fmt.Sprintf("store = \"redis\"\nredis_url = %q", s.redisURL)
	}
	s.auditPath = filepath.Join(s.dir, "audit", "audit.jsonl")
	cfg := fmt.Sprintf(`environment = "soak"

[server]
listen = "127.0.0.1:0"
shutdown_grace = "15s"

[upstream]
base_url = %q
api_key_file = %q
timeout = "30s"
first_byte_timeout = "10s"
stream_idle_timeout = "10s"
max_stream_duration = "30s"
max_response_bytes = 1048576

[retry]
attempts = 2
backoff = "10ms"
max_backoff = "100ms"

[pipeline]
input = ["strip-markers", "unicode-clean", "injection-heuristics", "secret-redact", "looper"]
output = ["secret-redact"]

[[plugins]]
name = "strip-markers"
builtin = "strip-markers"

[[plugins]]
name = "unicode-clean"
builtin = "unicode-clean"

[[plugins]]
name = "injection-heuristics"
builtin = "injection-heuristics"

[[plugins]]
name = "secret-redact"
builtin = "secret-redact"
streaming = "incremental"
hold_back = 256

[[plugins]]
name = "looper"
path = "looper.wasm"
sha256 = %q
timeout_ms = %d
memory_mb = 4
pool_size = 16
# The looper serves most requests and loops on a few: let its good calls
# run beside a looping one, and never quarantine it (the soak counts every
# refused good request as a failure).
max_concurrency = 16
breaker = { failures = -1 }
on_error = "reject"

[[clients]]
id = "app"
key_sha256 = %q
trusted = true
user_header = "x-soak-user"

[[clients]]
id = "noisy"
key_sha256 = %q
rate = "%d-S"

[limits]
%s

[[budgets]]
scope = "global"
period = "day"
usd = %v

[[budgets]]
scope = "user"
id = "spender"
period = "day"
usd = %v

[pricing."claude-sonnet-5-5"]
input = 3.0
output = 15.0

[admin]
listen = "127.0.0.1:0"
token_env = %q

[audit]
path = %q
max_size_mb = 1024
`, upstreamURL, keyFile, hex.EncodeToString(sum[:]), loopTimeoutMS, appHash, noisyHash, noisyRate, store,
		globalUSD, spenderUSD, adminTokenEnv, s.auditPath)
	s.cfgPath = filepath.Join(s.dir, "config.toml")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("writing the config: %w", err)
	}
	return nil
}

// moatProc is a running moat: a child process or an in-process server.
type moatProc struct {
	public, admin string
	pid           int
	stop          func() error
}

// startProcess runs `bin serve --config cfg` and waits for its listeners,
// read from its "moat listening" log line.
func startProcess(ctx context.Context, bin string, s *setup, logPath string) (*moatProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating moat's log: %w", err)
	}
	cmd := exec.Command(bin, "serve", "--config", s.cfgPath)
	cmd.Env = append(os.Environ(), adminTokenEnv+"="+s.adminTok)
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("piping moat's stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	addrs := make(chan [2]string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logf.Write(append(line, '\n'))
			if sent {
				continue
			}
			var rec struct {
				Msg   string `json:"msg"`
				Addr  string `json:"addr"`
				Admin string `json:"admin"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "moat listening" {
				addrs <- [2]string{rec.Addr, rec.Admin}
				sent = true
			}
		}
		_, _ = io.Copy(logf, stderr)
	}()
	exited := make(chan error, 1)
	go func() { <-copied; exited <- cmd.Wait(); logf.Close() }()
	p := &moatProc{pid: cmd.Process.Pid}
	p.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("moat exited with %w (log: %s)", err, logPath)
			}
			return nil
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("moat did not stop within 30s of SIGTERM (log: %s)", logPath)
		}
	}
	select {
	case a := <-addrs:
		p.public, p.admin = a[0], a[1]
		return p, nil
	case err := <-exited:
		return nil, fmt.Errorf("moat exited before listening (%v); log:\n%s", err, tail(logPath))
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil, fmt.Errorf("moat did not start listening; log:\n%s", tail(logPath))
}

// startInProcess runs moat's server.Run in this process.
func startInProcess(ctx context.Context, s *setup, logPath string) (*moatProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating moat's log: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: s.cfgPath,
			Stdout:     logf,
			Logger:     slog.New(slog.NewJSONHandler(logf, nil)),
			Ready:      func(p, a string) { ready <- [2]string{p, a} },
			Getenv: func(k string) string {
				if k == adminTokenEnv {
					return s.adminTok
				}
				return os.Getenv(k)
			},
		})
	}()
	p := &moatProc{pid: os.Getpid()}
	p.stop = func() error {
		cancel()
		defer logf.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("moat did not stop within 30s")
		}
	}
	select {
	case a := <-ready:
		p.public, p.admin = a[0], a[1]
		return p, nil
	case err := <-done:
		cancel()
		logf.Close()
		return nil, fmt.Errorf("moat did not start: %w", err)
	case <-time.After(60 * time.Second):
		cancel()
		logf.Close()
		return nil, errors.New("moat did not start listening within 60s")
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}
