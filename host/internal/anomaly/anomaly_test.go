package anomaly

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moat-gateway/moat/host/internal/logbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is a fixed wall time, aligned to a 5-minute slot.
var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

// hook is a webhook receiver on 127.0.0.1 that records what it is sent.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []Alert
	hdrs []http.Header
	ch   chan Alert
}

func newHook(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *hook {
	t.Helper()
	k := &hook{ch: make(chan Alert, 1000)}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("webhook body is not an Alert: %v: %s", err, b)
		}
		k.mu.Lock()
		k.got = append(k.got, a)
		k.hdrs = append(k.hdrs, r.Header.Clone())
		k.mu.Unlock()
		k.ch <- a
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// next waits for the next posted alert.
func (k *hook) next(t *testing.T) Alert {
	t.Helper()
	select {
	case a := <-k.ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook post within 5s")
		return Alert{}
	}
}

// none checks that nothing more was posted (after the detector is closed,
// so every queued post has been sent).
func (k *hook) none(t *testing.T) {
	t.Helper()
	select {
	case a := <-k.ch:
		t.Fatalf("unexpected alert posted: %+v", a)
	default:
	}
}

// logBuf is the detector's log, safe for its goroutines.
type logBuf struct{ logbuf.Buffer }

// count is how many log lines have msg.
func (l *logBuf) count(msg string) int {
	return strings.Count(l.String(), `"msg":"`+msg+`"`)
}

func newDetector(t *testing.T, cfg Config) (*Detector, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	cfg.Enabled = true
	if cfg.SpendFactor == 0 {
		cfg.SpendFactor = 5
	}
	if cfg.AuthFailures == 0 {
		cfg.AuthFailures = 10
	}
	d, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Environment: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(d.Close)
	return d, logs
}

func TestNew(t *testing.T) {
	d, err := New(Config{Enabled: false, Webhook: "::bad"}, Options{})
	if d != nil || err != nil {
		t.Fatalf("disabled: New = %v, %v; want nil, nil", d, err)
	}
	// A nil Detector ignores everything.
	d.Spend("app", 100, t0)
	d.KeyUse("app", "abcd", "10.0.0.1", t0)
	d.AuthFailure("10.0.0.1", t0)
	d.Close()

	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"factor 1", Config{SpendFactor: 1, AuthFailures: 3}, "spend_factor must be a number above 1"},
		{"factor NaN", Config{SpendFactor: math.NaN(), AuthFailures: 3}, "spend_factor"},
		{"no failures", Config{SpendFactor: 5, AuthFailures: 0}, "auth_failures must be at least 1"},
		{"ftp webhook", Config{SpendFactor: 5, AuthFailures: 3, Webhook: "ftp://x/y"}, "anomaly.webhook must be an http"},
		{"hostless webhook", Config{SpendFactor: 5, AuthFailures: 3, Webhook: "http:///x"}, "anomaly.webhook"},
		{"everything", Config{SpendFactor: -1, AuthFailures: -1, Webhook: "x"}, "spend_factor"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Enabled = true
			d, err := New(tc.cfg, Options{})
			if err == nil || d != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want error with %q", d, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "configuring anomaly alerts: ") {
				t.Errorf("error lacks its step: %v", err)
			}
		})
	}
	_, err = New(Config{Enabled: true, SpendFactor: -1, AuthFailures: -1, Webhook: "x"}, Options{})
	for _, w := range []string{"spend_factor", "auth_failures", "webhook"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not list %s", err, w)
		}
	}
}

func TestAuthFailures(t *testing.T) {
	k := newHook(t, nil)
	d, logs := newDetector(t, Config{AuthFailures: 3, Webhook: k.srv.URL + "/alerts"})
	ip := "203.0.113.7"

	// Spread out: 3 failures, but never 3 within a minute.
	for i := 0; i < 6; i++ {
		d.AuthFailure(ip, t0.Add(time.Duration(i)*31*time.Second))
	}
	// Another address's failures do not add to this one's.
	d.AuthFailure("203.0.113.8", t0.Add(200*time.Second))
	d.AuthFailure("203.0.113.8", t0.Add(201*time.Second))
	if n := logs.count("anomaly alert"); n != 0 {
		t.Fatalf("%d alerts for failures spread over minutes", n)
	}

	// A burst: the third within a minute fires.
	base := t0.Add(10 * time.Minute)
	d.AuthFailure(ip, base)
	d.AuthFailure(ip, base.Add(20*time.Second))
	d.AuthFailure(ip, base.Add(40*time.Second))
	a := k.next(t)
	if a.Type != "anomaly_alert" || a.Kind != KindAuthFailures || a.Subject != ip || a.IP != ip || a.Failures != 3 ||
		a.Environment != "test" || !a.Time.Equal(base.Add(40*time.Second)) || !strings.Contains(a.Message, ip) {
		t.Fatalf("alert = %+v", a)
	}
	k.mu.Lock()
	h := k.hdrs[0]
	k.mu.Unlock()
	if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "moat-anomaly-alert" {
		t.Errorf("webhook headers %v", h)
	}

	// Deduplicated within the hour, whatever the burst.
	for i := 0; i < 10; i++ {
		d.AuthFailure(ip, base.Add(time.Minute+time.Duration(i)*time.Second))
	}
	// An hour later it fires again.
	later := base.Add(41*time.Second + time.Hour)
	for i := 0; i < 3; i++ {
		d.AuthFailure(ip, later.Add(time.Duration(i)*time.Second))
	}
	if a := k.next(t); a.Subject != ip || !a.Time.Equal(later.Add(2*time.Second)) {
		t.Fatalf("second alert = %+v", a)
	}
	d.Close()
	k.none(t)
	if n := logs.count("anomaly alert"); n != 2 {
		t.Fatalf("%d alert log lines, want 2\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"anomaly alert"`) {
		t.Errorf("alert not logged at warn: %s", logs)
	}
}

func TestNewIP(t *testing.T) {
	t.Run("enabled", func(t *testing.T) {
		k := newHook(t, nil)
		d, logs := newDetector(t, Config{NewIP: true, Webhook: k.srv.URL})
		// The first address is learned silently, and so is its reuse.
		d.KeyUse("app", "aaaa1111", "10.1.1.1", t0)
		d.KeyUse("app", "aaaa1111", "10.1.1.1", t0.Add(time.Minute))
		// Another client's first address is its own warm-up.
		d.KeyUse("other", "bbbb2222", "10.9.9.9", t0)
		if n := logs.count("anomaly alert"); n != 0 {
			t.Fatalf("alert during warm-up: %s", logs)
		}
		d.KeyUse("app", "cccc3333", "10.2.2.2", t0.Add(2*time.Minute))
		a := k.next(t)
		if a.Kind != KindNewIP || a.Subject != "app" || a.Client != "app" || a.IP != "10.2.2.2" || a.KeyHash != "cccc3333" || a.KnownIPs != 1 {
			t.Fatalf("alert = %+v", a)
		}
		// Known now; a third address within the hour is deduplicated, one
		// after the hour fires.
		d.KeyUse("app", "cccc3333", "10.2.2.2", t0.Add(3*time.Minute))
		d.KeyUse("app", "cccc3333", "10.3.3.3", t0.Add(4*time.Minute))
		d.KeyUse("app", "cccc3333", "10.4.4.4", t0.Add(2*time.Minute+time.Hour))
		if a := k.next(t); a.IP != "10.4.4.4" || a.KnownIPs != 3 {
			t.Fatalf("alert after the hour = %+v", a)
		}
		// The other client's second address alerts on its own subject.
		d.KeyUse("other", "bbbb2222", "10.8.8.8", t0.Add(5*time.Minute))
		if a := k.next(t); a.Subject != "other" {
			t.Fatalf("alert = %+v", a)
		}
		d.Close()
		k.none(t)
	})
	t.Run("disabled", func(t *testing.T) {
		d, logs := newDetector(t, Config{NewIP: false})
		d.KeyUse("app", "aaaa", "10.1.1.1", t0)
		d.KeyUse("app", "aaaa", "10.2.2.2", t0)
		if n := logs.count("anomaly alert"); n != 0 {
			t.Fatalf("new_ip = false still alerted: %s", logs)
		}
	})
}

func TestSpend(t *testing.T) {
	hourly := func(d *Detector, client string, usd float64, from time.Time, hours int) time.Time {
		// usd per hour, spread over four calls an hour.
		for h := 0; h < hours; h++ {
			for q := 0; q < 4; q++ {
				d.Spend(client, usd/4, from.Add(time.Duration(h)*time.Hour+time.Duration(q)*15*time.Minute))
			}
		}
		return from.Add(time.Duration(hours) * time.Hour)
	}
	cases := []struct {
		name      string
		history   float64 // per hour, for historyH hours
		historyH  int
		spike     float64 // in the hour after
		wantAlert bool
	}{
		{"spike", 0.5, 5, 3, true},                   // 3 > 5 x 0.5
		{"under the factor", 0.5, 5, 2.4, false},     // 2.4 < 2.5
		{"under the minimum", 0.01, 5, 0.9, false},   // 90x, but under $1
		{"dormant then spending", 0, 3, 1.5, true},   // nothing before
		{"warm-up", 0.5, 0, 50, false},               // no history yet
		{"long history", 1, 30, 4.5, false},          // average over 23 h is 1
		{"long history spike", 1, 30, 5.5, true},     // 5.5 > 5 x 1
		{"negative and NaN ignored", 0, 0, 0, false}, // see below
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newHook(t, nil)
			d, logs := newDetector(t, Config{SpendFactor: 5, Webhook: k.srv.URL})
			start := t0
			if tc.historyH > 0 {
				d.Spend("app", 1e-9, start) // first seen
			}
			at := hourly(d, "app", tc.history, start, tc.historyH)
			if tc.name == "negative and NaN ignored" {
				d.Spend("app", 1e-9, t0)
				d.Spend("app", -100, t0.Add(3*time.Hour))
				d.Spend("app", math.NaN(), t0.Add(3*time.Hour))
				d.Spend("app", math.Inf(1), t0.Add(3*time.Hour))
				d.Spend("", 100, t0.Add(3*time.Hour))
			}
			if tc.spike > 0 {
				hourly(d, "app", tc.spike, at, 1)
			}
			d.Close()
			alerts := logs.count("anomaly alert")
			if tc.wantAlert {
				if alerts != 1 {
					t.Fatalf("%d alerts, want exactly 1 (deduplicated)\n%s", alerts, logs)
				}
				a := k.next(t)
				if a.Kind != KindSpend || a.Client != "app" || a.LastHourUSD < MinSpendUSD || a.LastHourUSD <= 5*a.HourlyAverageUSD {
					t.Fatalf("alert = %+v", a)
				}
				if math.Abs(a.HourlyAverageUSD-tc.history) > 0.01 {
					t.Errorf("hourly average %v, want about %v", a.HourlyAverageUSD, tc.history)
				}
			} else if alerts != 0 {
				t.Fatalf("unexpected alert\n%s", logs)
			}
			k.none(t)
		})
	}
}

// TestWebhookNeverBlocks: with the webhook hanging, every call returns and
// alerts beyond the queue are logged as dropped.
func TestWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	k := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	d, logs := newDetector(t, Config{AuthFailures: 1, Webhook: k.srv.URL})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < QueueSize+20; i++ {
			d.AuthFailure(fmt.Sprintf("198.51.100.%d", i), t0)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("alerts block while the webhook hangs")
	}
	k.next(t) // the sender is stuck in the first post
	if n := logs.count("anomaly alert"); n != QueueSize+20 {
		t.Errorf("%d alerts logged, want %d", n, QueueSize+20)
	}
	if logs.count("anomaly: webhook queue full; alert only logged") == 0 {
		t.Errorf("no dropped alert logged:\n%s", logs)
	}
}

// TestClose: queued alerts are delivered before Close returns; after it
// calls are ignored.
func TestClose(t *testing.T) {
	k := newHook(t, nil)
	d, _ := newDetector(t, Config{AuthFailures: 1, Webhook: k.srv.URL})
	for i := 0; i < 10; i++ {
		d.AuthFailure(fmt.Sprintf("192.0.2.%d", i), t0)
	}
	d.Close()
	k.mu.Lock()
	n := len(k.got)
	k.mu.Unlock()
	if n != 10 {
		t.Fatalf("%d of 10 queued alerts delivered by Close", n)
	}
	d.AuthFailure("192.0.2.200", t0)
	d.Close()
	k.mu.Lock()
	n = len(k.got)
	k.mu.Unlock()
	if n != 10 {
		t.Fatalf("alert posted after Close")
	}
}

// TestWebhookURLNotLogged: a webhook's path is often its credential; a
// failing webhook is logged by host only.
func TestWebhookURLNotLogged(t *testing.T) {
	const secret = "T000-B000-XXXXsecretXXXX"
	cases := []struct {
		name string
		url  func() string
		want string
	}{
		{"error status", func() string {
			k := newHook(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
			return k.srv.URL + "/services/" + secret
		}, "anomaly: webhook answered an error"},
		{"unreachable", func() string {
			srv := httptest.NewServer(http.NotFoundHandler())
			u := srv.URL
			srv.Close()
			return u + "/services/" + secret + "?token=" + secret
		}, "anomaly: posting alert failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, logs := newDetector(t, Config{AuthFailures: 1, Webhook: tc.url()})
			d.AuthFailure("192.0.2.1", t0)
			d.Close()
			if logs.count(tc.want) != 1 {
				t.Fatalf("no %q line:\n%s", tc.want, logs)
			}
			if strings.Contains(logs.String(), secret) {
				t.Fatalf("webhook credential in the logs:\n%s", logs)
			}
			if !strings.Contains(logs.String(), `"webhook":"http://127.0.0.1:`) {
				t.Errorf("webhook host not logged:\n%s", logs)
			}
		})
	}
}

// TestBoundedMemory: a flood of failing addresses and of new addresses
// for one client keeps the maps within their bounds.
func TestBoundedMemory(t *testing.T) {
	d, _ := newDetector(t, Config{NewIP: true, AuthFailures: 5})
	for i := 0; i < maxFailingIPs+500; i++ {
		d.AuthFailure(fmt.Sprintf("ip-%d", i), t0)
	}
	for i := 0; i < maxIPsPerClient+500; i++ {
		d.KeyUse("app", "k", fmt.Sprintf("ip-%d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.failures) > maxFailingIPs {
		t.Errorf("%d failing addresses tracked, bound %d", len(d.failures), maxFailingIPs)
	}
	if n := len(d.ips["app"]); n > maxIPsPerClient {
		t.Errorf("%d addresses tracked for one client, bound %d", n, maxIPsPerClient)
	}
	// The newest address is kept, the oldest evicted.
	if _, ok := d.ips["app"][fmt.Sprintf("ip-%d", maxIPsPerClient+499)]; !ok {
		t.Error("newest address not tracked")
	}
	if _, ok := d.ips["app"]["ip-0"]; ok {
		t.Error("oldest address not evicted")
	}
}
