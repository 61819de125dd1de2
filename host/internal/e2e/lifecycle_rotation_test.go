package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamKeyRotation rotates the Anthropic key twice under a steady
// stream of requests from four clients: once by replacing the key file
// (moat's watcher picks it up) and once by replacing it and calling
// POST /admin/reload (no SIGHUP). The stand-in accepts the old and the new
// key during each switch and then only the new one. No request fails, the
// new key reaches upstream, and no key appears in the logs.
func TestUpstreamKeyRotation(t *testing.T) {
	e := start(t, envOpts{})
	keyFile := filepath.Join(e.dir, "anthropic.key")
	key1 := e.upKey
	key2 := fakeUpstreamKey("rotation2")
	key3 := fakeUpstreamKey("rotation3")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequest("POST", e.url+"/v1/messages", strings.NewReader(string(lcBody(fmt.Sprintf("worker %d call %d", w, i)))))
				for k, vs := range e.auth() {
					req.Header[k] = vs
				}
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				var b strings.Builder
				buf := make([]byte, 4096)
				for {
					n, rerr := resp.Body.Read(buf)
					b.Write(buf[:n])
					if rerr != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d: %s", resp.StatusCode, b.String()))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	sawKey := func(k string) func() bool {
		return func() bool {
			rs := e.si.Requests()
			return len(rs) > 0 && rs[len(rs)-1].APIKey() == k
		}
	}
	time.Sleep(300 * time.Millisecond)

	// 1. File replaced; the watcher rotates.
	e.si.SetAPIKeys(key1, key2)
	lcWriteAtomic(t, keyFile, key2+"\n")
	lcEventually(t, 5*time.Second, "upstream sees the second key", sawKey(key2))
	time.Sleep(200 * time.Millisecond) // calls that read key1 before the swap finish
	e.si.SetAPIKeys(key2)              // key1 is revoked upstream
	time.Sleep(500 * time.Millisecond)

	// 2. File replaced and POST /admin/reload: once the reload has
	// answered, the next call carries the third key.
	e.si.SetAPIKeys(key2, key3)
	lcWriteAtomic(t, keyFile, key3+"\n")
	e.lcMustReload()
	marker := "after-reload-marker"
	if status, _, b := e.raw("POST", "/v1/messages", lcBody(marker), e.auth()); status != 200 {
		t.Fatalf("call after reload: %d %s", status, b)
	}
	found := false
	for _, r := range e.si.Requests() {
		if strings.Contains(string(r.Body), marker) {
			found = true
			if r.APIKey() != key3 {
				t.Fatalf("the call after POST /admin/reload did not carry the new key")
			}
		}
	}
	if !found {
		t.Fatal("the call after reload did not reach upstream")
	}
	time.Sleep(200 * time.Millisecond)
	e.si.SetAPIKeys(key3)
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()

	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed during rotation; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 40 {
		t.Fatalf("only %d calls in the stream; the test did not exercise rotation under load", ok.Load())
	}
	if !sawKey(key3)() {
		t.Fatal("upstream does not see the third key at the end")
	}
	for _, r := range e.si.Requests() {
		if k := r.APIKey(); k != key1 && k != key2 && k != key3 {
			t.Fatalf("upstream got an unexpected credential")
		}
	}
	logs := e.logs.String()
	if strings.Count(logs, `"msg":"upstream key rotated"`) < 2 {
		t.Errorf("rotations not logged:\n%s", logs)
	}
	lcNoSecret(t, "the logs", logs, key1, key2, key3)
	lcNoSecret(t, "the audit trail", strings.Join(e.auditLines(), "\n"), key1, key2, key3)
	lcNoSecret(t, "responses", e.seen.String(), key1, key2, key3)
	t.Logf("%d calls, none failed, across two rotations", ok.Load())
}
