package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/fault"
)

const testKeyHash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// redisAddr is the test redis-server (scripts/redis.sh, exported by the
// Makefile). Without it the test fails under CI=true and skips otherwise.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("MOAT_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MOAT_TEST_REDIS_ADDR is not set; CI must run redis tests (see scripts/redis.sh)")
		}
		t.Skip("MOAT_TEST_REDIS_ADDR not set; start one with scripts/redis.sh start PORT DIR")
	}
	return addr
}

var prefixSeq atomic.Int64

// testPrefix is a key prefix no other test (or earlier run) uses.
func testPrefix(t testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("moattest:%s:%d:%d:", name, time.Now().UnixNano(), prefixSeq.Add(1))
}

// parseCfg parses a config.toml body with the given [limits] store. For
// "redis" the redis_url is filled from MOAT_TEST_REDIS_ADDR (or addr when
// given); for "memory" the state file goes in a temp dir.
func parseCfg(t testing.TB, store, body string) *config.Config {
	t.Helper()
	return parseCfgAt(t, store, "", filepath.Join(t.TempDir(), "state.db"), body)
}

func parseCfgAt(t testing.TB, store, addr, statePath, body string) *config.Config {
	t.Helper()
	var lim string
	switch store {
	case "redis":
		if addr == "" {
			addr = redisAddr(t)
		}
		lim = fmt.Sprintf("store = \"redis\"\nredis_url = \"redis://%s/0\"\n", addr)
	default:
		lim = fmt.Sprintf("store = \"memory\"\nstate_path = %q\n", statePath)
	}
	// The test body's [limits] keys are appended to the store lines.
	if i := strings.Index(body, "[limits]\n"); i >= 0 {
		body = body[:i] + "[limits]\n" + lim + body[i+len("[limits]\n"):]
	} else {
		body = "[limits]\n" + lim + body
	}
	body = strings.ReplaceAll(body, "KEYHASH", testKeyHash)
	cfg, err := config.Parse([]byte(body), "")
	if err != nil {
		t.Fatalf("parsing test config: %v\n%s", err, body)
	}
	return cfg
}

// newLimiter builds a Limiter closed at the end of the test.
func newLimiter(t testing.TB, cfg *config.Config, opts Options) *Limiter {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = testPrefix(t)
	}
	l, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// stores are the store kinds every shared test runs against.
var stores = []string{"memory", "redis"}

// asError asserts err is a *fault.Error of kind k.
func asError(t testing.TB, err error, k fault.Kind) *fault.Error {
	t.Helper()
	var e *fault.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *fault.Error", err, err)
	}
	if e.Kind != k {
		t.Fatalf("error kind = %s, want %s (%v)", e.Kind, k, e)
	}
	return e
}

// race runs n goroutines released together and waits for them.
func race(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	runtime.Gosched()
	start.Done()
	done.Wait()
}

// clock is a settable Now for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// freePort finds a free 127.0.0.1 port.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ownRedis starts a private redis-server through scripts/redis.sh and
// returns its address and a function that kills it (SIGKILL, as a crash);
// scripts/redis.sh stop runs at cleanup.
func ownRedis(t testing.TB) (string, func()) {
	t.Helper()
	redisAddr(t) // same skip/fail rule: redis tests need redis-server
	script, err := filepath.Abs("../../../scripts/redis.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	out, err := exec.Command("bash", script, "start", fmt.Sprint(port), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("starting redis-server: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("stopping redis-server: %v\n%s", err, out)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	kill := func() {
		b, err := os.ReadFile(filepath.Join(dir, "redis.pid"))
		if err != nil {
			t.Fatalf("reading redis pid: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("redis pid %q: %v", b, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("killing redis-server %d: %v", pid, err)
		}
		for i := 0; i < 100; i++ { // until the port refuses connections
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err != nil {
				return
			}
			c.Close()
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("redis-server at %s still answers after SIGKILL", addr)
	}
	return addr, kill
}

// countLogger is a logger counting the records whose message is msg.
func countLogger(msg string, n *atomic.Int64) *slog.Logger {
	return slog.New(&countHandler{msg: msg, n: n})
}

type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }
