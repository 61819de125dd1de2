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

	"github.com/BurntSushi/toml"
	"github.com/moat-gateway/moat/host/internal/fault"
)

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

// parseCfg builds a Config from a TOML body written as config.toml
// writes limits ([limits] rates, user_tokens_per_minute and fail_open;
// [[clients]] id, rate, user_rate and max_in_flight; [[budgets]];
// [pricing."model"]), with the given store. For "redis" the URL is
// MOAT_TEST_REDIS_ADDR's; for "memory" the state file goes in a temp dir.
// config.toml's defaults are not applied: a budget names its period.
func parseCfg(t testing.TB, store, body string) Config {
	t.Helper()
	return parseCfgAt(t, store, "", filepath.Join(t.TempDir(), "state.db"), body)
}

// parseCfgAt is parseCfg with the Redis address (for "redis"; "" is
// MOAT_TEST_REDIS_ADDR's) or the state file (for "memory") given.
func parseCfgAt(t testing.TB, store, addr, statePath, body string) Config {
	t.Helper()
	var f struct {
		Limits struct {
			ClientRate          string `toml:"client_rate"`
			UserRate            string `toml:"user_rate"`
			AuthFailRate        string `toml:"auth_fail_rate"`
			UserTokensPerMinute int64  `toml:"user_tokens_per_minute"`
			FailOpen            bool   `toml:"fail_open"`
		} `toml:"limits"`
		Clients []struct {
			ID          string `toml:"id"`
			Rate        string `toml:"rate"`
			UserRate    string `toml:"user_rate"`
			MaxInFlight int    `toml:"max_in_flight"`
		} `toml:"clients"`
		Budgets []struct {
			Scope   Scope     `toml:"scope"`
			ID      string    `toml:"id"`
			Period  Period    `toml:"period"`
			USD     float64   `toml:"usd"`
			Tokens  int64     `toml:"tokens"`
			Alerts  []float64 `toml:"alerts"`
			Webhook string    `toml:"webhook"`
		} `toml:"budgets"`
		Pricing map[string]struct {
			Input      float64 `toml:"input"`
			Output     float64 `toml:"output"`
			CacheWrite float64 `toml:"cache_write"`
			CacheRead  float64 `toml:"cache_read"`
		} `toml:"pricing"`
	}
	md, err := toml.Decode(body, &f)
	if err != nil {
		t.Fatalf("parsing test config: %v\n%s", err, body)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("parseCfg does not know %v\n%s", u, body)
	}
	var cfg Config
	switch store {
	case "redis":
		if addr == "" {
			addr = redisAddr(t)
		}
		cfg.Store = Store{Kind: StoreRedis, RedisURL: fmt.Sprintf("redis://%s/0", addr)}
	default:
		cfg.Store = Store{Kind: StoreMemory, StateFile: statePath}
	}
	l := f.Limits
	cfg.ClientRate = testRate(t, l.ClientRate)
	cfg.UserRate = testRate(t, l.UserRate)
	cfg.AuthFailRate = testRate(t, l.AuthFailRate)
	cfg.UserTokensPerMinute, cfg.FailOpen = l.UserTokensPerMinute, l.FailOpen
	for _, c := range f.Clients {
		cfg.Clients = append(cfg.Clients, Client{ID: c.ID, Rate: testRate(t, c.Rate), UserRate: testRate(t, c.UserRate), MaxInFlight: c.MaxInFlight})
	}
	for _, b := range f.Budgets {
		cfg.Budgets = append(cfg.Budgets, Budget(b))
	}
	for m, p := range f.Pricing {
		if cfg.Pricing == nil {
			cfg.Pricing = map[string]Pricing{}
		}
		cfg.Pricing[m] = Pricing(p)
	}
	return cfg
}

// testRate parses a rate written as config.toml writes it ("10-M").
func testRate(t testing.TB, s string) Rate {
	t.Helper()
	if s == "" {
		return Rate{}
	}
	n, unit, ok := strings.Cut(s, "-")
	count, err := strconv.ParseInt(n, 10, 64)
	per := map[string]time.Duration{"S": time.Second, "M": time.Minute, "H": time.Hour, "D": 24 * time.Hour}[unit]
	if !ok || err != nil || per == 0 {
		t.Fatalf("test rate %q: want COUNT-S|M|H|D", s)
	}
	return Rate{Count: count, Period: per}
}

// newLimiter builds a Limiter closed at the end of the test.
func newLimiter(t testing.TB, cfg Config, opts Options) *Limiter {
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
