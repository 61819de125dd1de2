package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// clientWaitAudit polls the audit log until it has n lines.
func clientWaitAudit(t *testing.T, e *env, n int) []faultAudit {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := faultAudits(t, e)
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) != n {
				t.Fatalf("%d audit lines, want %d", len(lines), n)
			}
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientHost is moat's public address as host:port.
func clientHost(e *env) string { return strings.TrimPrefix(e.url, "http://") }

// TestClientDisconnects cuts the client's connection while moat relays an
// endless upstream answer: the upstream call must be cancelled, usage
// settled and one audit line written with status 499.
func TestClientDisconnects(t *testing.T) {
	e := start(t, envOpts{extra: faultExtra})
	for _, stream := range []bool{false, true} {
		if st, _, b := e.raw("POST", "/v1/messages", faultBody("warm up", stream), e.auth()); st != 200 {
			t.Fatalf("warm-up: %d %s", st, b)
		}
	}
	leaks := faultLeakCheck(t)
	for _, stream := range []bool{true, false} {
		name := "non-streaming"
		if stream {
			name = "streaming"
		}
		t.Run(name, func(t *testing.T) {
			before := len(faultAudits(t, e))
			if err := e.si.SetFault(standin.Fault{Kind: standin.FaultEndless, Count: 1}); err != nil {
				t.Fatal(err)
			}
			defer e.si.ClearFault()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/messages", bytes.NewReader(faultBody("go on forever", stream)))
			for k, vs := range e.auth() {
				req.Header[http.CanonicalHeaderKey(k)] = vs
			}
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			type answer struct {
				resp *http.Response
				err  error
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := (&http.Client{Transport: tr}).Do(req)
				got <- answer{resp, err}
			}()
			id := "" // the request id, known once the stream's headers arrive
			if stream {
				ans := <-got
				if ans.err != nil {
					t.Fatalf("request: %v", ans.err)
				}
				resp := ans.resp
				defer resp.Body.Close()
				id = resp.Header.Get("x-moat-request-id")
				// Read some of the answer, then hang up.
				br := bufio.NewReader(resp.Body)
				deltas := 0
				for deltas < 5 {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("reading stream: %v", err)
					}
					if strings.HasPrefix(line, "event: content_block_delta") {
						deltas++
					}
				}
			} else {
				// A non-streaming answer is only sent once whole: moat is
				// still reading the endless upstream body when the client
				// gives up waiting for it.
				time.Sleep(300 * time.Millisecond)
			}
			if n := e.si.InFlight(); n != 1 {
				t.Fatalf("stand-in has %d requests in flight before the hang-up, want 1", n)
			}
			cancel()
			if !stream {
				if ans := <-got; ans.err == nil {
					ans.resp.Body.Close()
					t.Fatalf("got an answer (%d) to an endless non-streaming call", ans.resp.StatusCode)
				}
			}

			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer wcancel()
			if err := e.si.WaitIdle(wctx); err != nil {
				t.Fatalf("upstream call not cancelled after the client left: %d in flight, %d streams open", e.si.InFlight(), e.si.OpenStreams())
			}
			if n := e.si.OpenStreams(); n != 0 {
				t.Errorf("%d upstream streams still open", n)
			}
			lines := clientWaitAudit(t, e, before+1)
			a := lines[len(lines)-1]
			if a.Status != 499 || !strings.Contains(a.Error, "client") || (id != "" && a.RequestID != id) {
				t.Errorf("audit line %+v, want request %q with status 499 and a client error", a, id)
			}
			if stream && (a.Output == 0 || a.CostUSD == 0) {
				t.Errorf("generated text not charged: output_tokens %d cost %v", a.Output, a.CostUSD)
			}
			faultSettled(t, e)
			if st, _, b := e.raw("POST", "/v1/messages", faultBody("next", stream), e.auth()); st != 200 {
				t.Fatalf("next request: %d %s", st, b)
			}
		})
	}
	leaks()
}

// TestSlowLoris trickles request headers one byte at a time: the server's
// read_header_timeout must close the connection, and no request reaches
// the gateway.
func TestSlowLoris(t *testing.T) {
	e := start(t, envOpts{server: `read_header_timeout = "500ms"`})
	conn, err := net.Dial("tcp", clientHost(e))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan time.Duration, 1)
	t0 := time.Now()
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(t0)
	}()
	head := "POST /v1/messages HTTP/1.1\r\nHost: moat\r\nx-api-key: " + e.key + "\r\nx-trickle: " + strings.Repeat("a", 200)
	var took time.Duration
	sent := 0
loop:
	for sent < len(head) {
		select {
		case took = <-closed:
			break loop
		case <-time.After(50 * time.Millisecond):
			if _, err := conn.Write([]byte{head[sent]}); err != nil {
				took = time.Since(t0)
				break loop
			}
			sent++
		}
	}
	if took == 0 {
		t.Fatalf("connection still open after trickling %d header bytes over %v", sent, time.Since(t0))
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("connection closed after %v, want about read_header_timeout (500ms)", took)
	}
	if lines := e.auditLines(); len(lines) != 0 {
		t.Errorf("a trickled request reached the gateway: %d audit lines", len(lines))
	}
	if st, _, b := e.raw("POST", "/v1/messages", faultBody("after the loris", false), e.auth()); st != 200 {
		t.Fatalf("next request: %d %s", st, b)
	}
}

// TestBodyNeverFinishes sends headers promising a body and then trickles
// it: read_timeout must end the read, and the call is audited with an
// error.
func TestBodyNeverFinishes(t *testing.T) {
	e := start(t, envOpts{server: `read_timeout = "1s"`, extra: faultExtra})
	conn, err := net.Dial("tcp", clientHost(e))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: moat\r\nx-api-key: %s\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"model\":", e.key)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(done); wg.Wait() }()
	t0 := time.Now()
	lines := clientWaitAudit(t, e, 1)
	took := time.Since(t0)
	a := lines[0]
	if a.Status < 400 || a.Error == "" || a.Decision == "allow" {
		t.Errorf("audit line %+v, want an error for the unfinished body", a)
	}
	if took > 4*time.Second {
		t.Errorf("the unfinished body was read for %v, past read_timeout (1s)", took)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("status %d for an unfinished body", resp.StatusCode)
		} else {
			errorBody(t, b)
		}
	}
	faultSettled(t, e)
	if st, _, b := e.raw("POST", "/v1/messages", faultBody("after the trickle", false), e.auth()); st != 200 {
		t.Fatalf("next request: %d %s", st, b)
	}
}

// clientHeap returns HeapInuse and StackInuse after a full collection.
func clientHeap() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// clientDialEnv tells the test binary, re-run as a child, to act as the
// crowd of idle clients of TestManyIdleConnections: "ADDR COUNT".
const clientDialEnv = "MOAT_E2E_IDLE_CROWD"

// TestManyIdleConnections holds 10,000 idle keep-alive connections to moat
// (half after one request, half before any) and checks that moat's heap
// grows by little per connection and that it still serves. The client ends
// live in a child process (this test binary, re-run), so each process needs
// one descriptor per connection, not two.
func TestManyIdleConnections(t *testing.T) {
	conns := 10000
	if faultRace {
		// The race detector allows at most 8128 live goroutines, and moat
		// serves each connection on one.
		conns = 3000
		t.Logf("race detector on: holding %d connections instead of 10,000", conns)
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("reading RLIMIT_NOFILE: %v", err)
	}
	if need := uint64(conns + 1000); lim.Cur < need {
		raised := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Skipf("needs %d file descriptors; RLIMIT_NOFILE is %d (hard %d) and cannot be raised: %v", need, lim.Cur, lim.Max, err)
		}
		t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	}
	e := start(t, envOpts{server: `idle_timeout = "60s"
read_header_timeout = "60s"`})
	if st, _, b := e.raw("POST", "/v1/messages", faultBody("before", false), e.auth()); st != 200 {
		t.Fatalf("warm-up: %d %s", st, b)
	}
	heap0, stack0 := clientHeap()
	g0 := runtime.NumGoroutine()

	cmd := exec.Command(os.Args[0], "-test.run", "^TestIdleCrowdChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", clientDialEnv, clientHost(e), conns))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the client crowd: %v", err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	ready := false
	var childOut strings.Builder
	for sc.Scan() {
		line := sc.Text()
		childOut.WriteString(line + "\n")
		if line == "crowd ready" {
			ready = true
			break
		}
	}
	if !ready {
		stdin.Close()
		_ = cmd.Wait()
		t.Fatalf("the client crowd did not get its %d connections:\n%s%s", conns, childOut.String(), stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	// Let the server goroutines settle into their idle reads.
	time.Sleep(500 * time.Millisecond)
	heap1, stack1 := clientHeap()
	g1 := runtime.NumGoroutine()
	perHeap := (float64(heap1) - float64(heap0)) / float64(conns)
	perStack := (float64(stack1) - float64(stack0)) / float64(conns)
	t.Logf("%d idle connections: heap in use %+.1f KiB/conn, goroutine stacks %+.1f KiB/conn, goroutines %d -> %d",
		conns, perHeap/1024, perStack/1024, g0, g1)
	if perHeap > 20*1024 {
		t.Errorf("heap grows %.1f KiB per idle connection, want < 20 KiB", perHeap/1024)
	}
	if g1-g0 < conns*9/10 {
		t.Errorf("only %d new goroutines for %d connections: the crowd is not connected", g1-g0, conns)
	}
	if g1-g0 > conns+100 {
		t.Errorf("%d new goroutines for %d connections: more than one per connection", g1-g0, conns)
	}
	// moat still serves while holding them.
	t0 := time.Now()
	if st, _, b := e.raw("POST", "/v1/messages", faultBody("while crowded", true), e.auth()); st != 200 {
		t.Fatalf("request while holding %d connections: %d %s", conns, st, b)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("request took %v while holding idle connections", d)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("client crowd: %v\n%s", err, stderr.String())
	}
	// The server side lets go of them.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > g0+50 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0+50 {
		t.Errorf("%d goroutines after the crowd left, %d before it came", g, g0)
	}
}

// TestIdleCrowdChild is the child side of TestManyIdleConnections: it
// opens the connections (one keep-alive request on every other one),
// prints "crowd ready", and holds them until its stdin closes.
func TestIdleCrowdChild(t *testing.T) {
	spec := os.Getenv(clientDialEnv)
	if spec == "" {
		t.Skip("only run by TestManyIdleConnections")
	}
	var addr string
	var conns int
	if _, err := fmt.Sscanf(spec, "%s %d", &addr, &conns); err != nil {
		t.Fatalf("bad %s %q: %v", clientDialEnv, spec, err)
	}
	held := make([]net.Conn, conns)
	defer func() {
		for _, c := range held {
			if c != nil {
				c.Close()
			}
		}
	}()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err == nil && i%2 == 0 {
					err = clientOneRequest(c)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					if c != nil {
						c.Close()
					}
					continue
				}
				held[i] = c
			}
		}()
	}
	for i := 0; i < conns; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("opening %d connections: %v", conns, firstErr)
	}
	fmt.Println("crowd ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// clientOneRequest sends one keep-alive request on c and reads the answer.
func clientOneRequest(c net.Conn) error {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: moat\r\n\r\n"); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("healthz status %d", resp.StatusCode)
	}
	return nil
}
