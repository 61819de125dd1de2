package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// lcHook is a webhook receiver on 127.0.0.1.
type lcHook struct {
	srv *httptest.Server
	ch  chan map[string]any
}

func lcNewHook(t *testing.T) *lcHook {
	t.Helper()
	h := &lcHook{ch: make(chan map[string]any, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a map[string]any
		if err := json.Unmarshal(b, &a); err != nil || r.Method != http.MethodPost {
			t.Errorf("webhook got %s %s", r.Method, b)
		}
		h.ch <- a
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next waits for an alert of kind.
func (h *lcHook) next(t *testing.T, kind string) map[string]any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case a := <-h.ch:
			if a["kind"] == kind {
				return a
			}
		case <-deadline:
			t.Fatalf("no %s alert posted within 5s", kind)
			return nil
		}
	}
}

// TestAnomalyAlerts: a burst of failed authentications from one address
// and a client key used from a second address each post an alert to the
// [anomaly] webhook and log a warning.
func TestAnomalyAlerts(t *testing.T) {
	hook := lcNewHook(t)
	e := start(t, envOpts{extra: fmt.Sprintf("[anomaly]\nenabled = true\nnew_ip = true\nauth_failures = 3\nwebhook = %q\n", hook.srv.URL+"/alerts")})

	t.Run("auth failure burst", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if status, _, _ := e.lcCall("moat_"+strings.Repeat("x", 40), nil); status != 401 {
				t.Fatalf("bad key: status %d", status)
			}
		}
		a := hook.next(t, "auth_failures")
		if a["subject"] != "127.0.0.1" || a["failures"] != float64(3) || a["environment"] != "test" {
			t.Fatalf("alert %v", a)
		}
	})

	t.Run("key used from a new address", func(t *testing.T) {
		// First use from 127.0.0.1 is learned silently.
		if status, _, b := e.lcCall(e.key, nil); status != 200 {
			t.Fatalf("status %d: %s", status, b)
		}
		// Then the same key from 127.0.0.2 (loopback, a real second source
		// address).
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		c := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}, Timeout: 10 * time.Second}
		defer c.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(context.Background(), "POST", e.url+"/v1/messages", strings.NewReader(string(lcBody("from elsewhere"))))
		for k, vs := range e.auth() {
			req.Header[k] = vs
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("call from 127.0.0.2: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call from 127.0.0.2: status %d", resp.StatusCode)
		}
		a := hook.next(t, "new_ip")
		sum := sha256.Sum256([]byte(e.key))
		if a["client"] != "app" || a["ip"] != "127.0.0.2" || a["key_hash"] != hex.EncodeToString(sum[:4]) {
			t.Fatalf("alert %v", a)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"msg":"anomaly alert"`) || !strings.Contains(logs, `"kind":"new_ip"`) {
			t.Errorf("alert not logged:\n%s", logs)
		}
		lcNoSecret(t, "the logs", logs, e.key)
	})
}
