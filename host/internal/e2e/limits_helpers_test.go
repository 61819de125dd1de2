package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// usageReport is the part of GET /admin/usage the limit tests read.
type usageReport struct {
	Store   string `json:"store"`
	Clients []struct {
		ID          string `json:"id"`
		InFlight    int64  `json:"in_flight"`
		MaxInFlight int64  `json:"max_in_flight"`
		Rate        *struct {
			Limit     int64 `json:"limit"`
			Remaining int64 `json:"remaining"`
		} `json:"rate"`
	} `json:"clients"`
	Users []struct {
		Client           string `json:"client"`
		User             string `json:"user"`
		TokensThisMinute int64  `json:"tokens_this_minute"`
		TokensPerMinute  int64  `json:"tokens_per_minute"`
		Rate             *struct {
			Limit     int64 `json:"limit"`
			Remaining int64 `json:"remaining"`
		} `json:"rate"`
	} `json:"users"`
	Budgets []budgetLine `json:"budgets"`
}

type budgetLine struct {
	Scope           string  `json:"scope"`
	ID              string  `json:"id"`
	Subject         string  `json:"subject"`
	Period          string  `json:"period"`
	USDLimit        float64 `json:"usd_limit"`
	USDSpent        float64 `json:"usd_spent"`
	USDReserved     float64 `json:"usd_reserved"`
	USDRemaining    float64 `json:"usd_remaining"`
	TokensLimit     int64   `json:"tokens_limit"`
	TokensSpent     int64   `json:"tokens_spent"`
	TokensRemaining int64   `json:"tokens_remaining"`
}

// usage reads GET /admin/usage with the admin token.
func (e *env) usage(t testing.TB) usageReport {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.admin+"/admin/usage", nil)
	req.Header.Set("Authorization", "Bearer "+e.adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /admin/usage: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/usage: %d %s", resp.StatusCode, b)
	}
	var rep usageReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("decoding /admin/usage %s: %v", b, err)
	}
	return rep
}

// budget returns the report line of one budget subject.
func (rep usageReport) budget(scope, subject string) (budgetLine, bool) {
	for _, b := range rep.Budgets {
		if b.Scope == scope && b.Subject == subject {
			return b, true
		}
	}
	return budgetLine{}, false
}

// budgetSpent is the USD spent on a budget subject, per /admin/usage.
func budgetSpent(t testing.TB, e *env, scope, subject string) float64 {
	t.Helper()
	b, ok := e.usage(t).budget(scope, subject)
	if !ok {
		t.Fatalf("/admin/usage has no %s budget for %q", scope, subject)
	}
	return b.USDSpent
}

// reply is one response of a burst.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// errType and errMsg read an Anthropic error body ("" when not one).
func (r reply) errType() string { t, _ := r.errParts(); return t }
func (r reply) errMsg() string  { _, m := r.errParts(); return m }
func (r reply) errParts() (string, string) {
	var eb struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error.Type, eb.Error.Message
}

// burst sends n requests at once (released together by a barrier); url
// picks the moat of request i.
func burst(t testing.TB, n int, url func(i int) string, body []byte, hdr func(i int) map[string][]string) []reply {
	t.Helper()
	// A client of its own, with room for every connection, whose idle
	// connections are closed afterwards: the transport may dial spare
	// connections it never uses, and moat's graceful shutdown waits up to
	// 5s for such never-used connections.
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	burstClient := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	out := make([]reply, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			req, err := http.NewRequest(http.MethodPost, url(i)+"/v1/messages", bytes.NewReader(body))
			if err != nil {
				out[i].err = err
				ready.Done()
				return
			}
			for k, vs := range hdr(i) {
				req.Header[http.CanonicalHeaderKey(k)] = vs
			}
			ready.Done()
			<-gate
			resp, err := burstClient.Do(req)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			out[i].status, out[i].header = resp.StatusCode, resp.Header
			out[i].body, out[i].err = io.ReadAll(resp.Body)
		}(i)
	}
	ready.Wait()
	close(gate)
	done.Wait()
	for i, r := range out {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
	}
	return out
}

// countStatus tallies statuses.
func countStatus(rs []reply) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.status]++
	}
	return m
}

// testRedis returns the address of the test redis-server
// (MOAT_TEST_REDIS_ADDR): a failure under CI when unset, a skip otherwise.
func testRedis(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("MOAT_TEST_REDIS_ADDR")
	if addr == "" {
		needTool(t, "MOAT_TEST_REDIS_ADDR is not set; start one with `bash scripts/redis.sh start 6391 .cache/redis`")
	}
	return addr
}

// redisDB empties database db of the test redis and returns its URL. Each
// limits test owns one database, so moat's default key prefix is safe.
func redisDB(t testing.TB, addr string, db int) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flushing redis db %d at %s: %v", db, addr, err)
	}
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
		defer c.Close()
		_ = c.FlushDB(context.Background()).Err()
	})
	return fmt.Sprintf("redis://%s/%d", addr, db)
}

// ownRedis starts a private redis-server with scripts/redis.sh on a free
// port for a test that kills it, and returns its address and a stop
// function (also run at cleanup).
func ownRedis(t testing.TB) (addr string, stop func()) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && !inCI() {
		t.Skip("redis-server is not installed (scripts/redis.sh installs it)")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "redis.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("scripts/redis.sh %v: %w\n%s", args, err, out)
		}
		return nil
	}
	if err := run("start", strconv.Itoa(port), dir); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := run("stop", dir); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return fmt.Sprintf("127.0.0.1:%d", port), stop
}
