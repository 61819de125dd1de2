// Package anomaly raises alerts on unusual use of moat, from [anomaly] in
// config.toml:
//
//   - spend: a client's spend in the last hour is above spend_factor times
//     its trailing hourly average (over up to the 23 hours before), and at
//     least MinSpendUSD. A client needs an hour of history first.
//   - new_ip: a client's key is used from an address not seen before for
//     that client. The client's first address is learned silently.
//   - auth_failures: one address fails authentication auth_failures times
//     within a minute.
//
// Each alert is a warn log line and, when a webhook is set, a JSON POST of
// an [Alert] to it. Alerts are deduplicated per (kind, subject) per hour.
// Webhooks are posted in the background from a bounded queue with a
// timeout, so reporting never blocks or fails a request; when the queue is
// full the alert is only logged.
//
// State is in memory and per instance: a restart starts the history, the
// address sets and the counters afresh.
package anomaly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Kinds of alert.
const (
	KindSpend        = "spend"
	KindNewIP        = "new_ip"
	KindAuthFailures = "auth_failures"
)

// MinSpendUSD is the least spend in the last hour that can raise a spend
// alert, so a client going from $0.001 to $0.01 an hour does not page
// anyone.
const MinSpendUSD = 1.0

// Bounds on memory and delivery.
const (
	// QueueSize is how many webhook posts may wait; more are dropped (and
	// still logged).
	QueueSize = 64
	// PostTimeout bounds one webhook post.
	PostTimeout = 5 * time.Second
	// CloseGrace is how long Close waits for queued posts.
	CloseGrace = 5 * time.Second

	dedupeFor       = time.Hour
	failureWindow   = time.Minute
	slotLen         = 5 * time.Minute
	slotsPerHour    = 12 // time.Hour / slotLen
	historyHours    = 23
	ringSlots       = (historyHours + 1) * slotsPerHour
	maxClients      = 10000
	maxIPsPerClient = 4096
	maxFailingIPs   = 10000
	maxFired        = 10000
)

// Alert is what is logged and posted to the webhook.
type Alert struct {
	// Type is always "anomaly_alert".
	Type        string    `json:"type"`
	Kind        string    `json:"kind"`
	Environment string    `json:"environment,omitempty"`
	Time        time.Time `json:"time"`
	// Subject is what the alert is about: the client id (spend, new_ip) or
	// the address (auth_failures).
	Subject string `json:"subject"`
	Client  string `json:"client,omitempty"`
	IP      string `json:"ip,omitempty"`
	// KeyHash is the first 8 hex characters of the key's SHA-256 (new_ip).
	KeyHash string `json:"key_hash,omitempty"`
	// KnownIPs is how many addresses the client used before (new_ip).
	KnownIPs int `json:"known_ips,omitempty"`
	// LastHourUSD and HourlyAverageUSD describe a spend alert.
	LastHourUSD      float64 `json:"last_hour_usd,omitempty"`
	HourlyAverageUSD float64 `json:"hourly_average_usd,omitempty"`
	// Failures is the count within a minute (auth_failures).
	Failures int    `json:"failures,omitempty"`
	Message  string `json:"message"`
}

// Config is what the detector watches for: [anomaly] of config.toml,
// compiled by host/internal/plan (whose defaults are spend_factor 5 and
// auth_failures 10). The zero value is a disabled detector.
type Config struct {
	// Enabled turns alerts on; false makes New return an inert nil Detector.
	Enabled bool
	// SpendFactor fires a spend alert when a client's last hour costs more
	// than this multiple of its trailing hourly average; must be above 1.
	SpendFactor float64
	// NewIP fires when a client key is used from an address not seen before.
	NewIP bool
	// AuthFailures per address per minute fire an alert; at least 1.
	AuthFailures int
	// Webhook, when set, is an http(s) URL each alert is POSTed to.
	Webhook string
}

// Options are the non-config inputs of New. The zero value is usable.
type Options struct {
	// Logger receives the alerts and delivery trouble; nil discards.
	Logger *slog.Logger
	// HTTPClient posts webhooks; nil uses one with a PostTimeout timeout.
	HTTPClient *http.Client
	// Environment is copied into every alert.
	Environment string
}

// Detector watches requests for anomalies. A nil *Detector ignores every
// call, so callers need not check whether [anomaly] is enabled. It is safe
// for concurrent use.
type Detector struct {
	cfg  Config
	env  string
	log  *slog.Logger
	http *http.Client

	mu       sync.Mutex
	spend    map[string]*spendHistory
	ips      map[string]map[string]time.Time // client -> ip -> last seen
	failures map[string]*failures
	swept    time.Time            // last sweep of stale failures
	fired    map[string]time.Time // kind\x00subject -> when
	closed   bool
	dropped  int

	queue  chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New returns a Detector for cfg, or nil (a valid, inert Detector) when
// cfg.Enabled is false. It checks cfg and starts the webhook sender; call
// Close when done.
func New(cfg Config, opts Options) (*Detector, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	if err := check(cfg); err != nil {
		return nil, fmt.Errorf("configuring anomaly alerts: %w", err)
	}
	d := &Detector{
		cfg:      cfg,
		env:      opts.Environment,
		log:      opts.Logger,
		http:     opts.HTTPClient,
		spend:    map[string]*spendHistory{},
		ips:      map[string]map[string]time.Time{},
		failures: map[string]*failures{},
		fired:    map[string]time.Time{},
		queue:    make(chan []byte, QueueSize),
		done:     make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.http == nil {
		d.http = &http.Client{Timeout: PostTimeout}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.send()
	return d, nil
}

func check(cfg Config) error {
	var errs []error
	if math.IsNaN(cfg.SpendFactor) || math.IsInf(cfg.SpendFactor, 0) || cfg.SpendFactor <= 1 {
		errs = append(errs, fmt.Errorf("anomaly.spend_factor must be a number above 1, got %v", cfg.SpendFactor))
	}
	if cfg.AuthFailures < 1 {
		errs = append(errs, fmt.Errorf("anomaly.auth_failures must be at least 1, got %d", cfg.AuthFailures))
	}
	if cfg.Webhook != "" {
		u, err := url.Parse(cfg.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("anomaly.webhook must be an http:// or https:// URL, got %q", cfg.Webhook))
		}
	}
	return errors.Join(errs...)
}

// Close stops accepting alerts, waits up to CloseGrace for queued webhook
// posts, then abandons the rest. It is idempotent and safe on nil.
func (d *Detector) Close() {
	if d == nil {
		return
	}
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		close(d.queue)
		d.mu.Unlock()
		t := time.NewTimer(CloseGrace)
		defer t.Stop()
		select {
		case <-d.done:
		case <-t.C:
			d.cancel()
			<-d.done
		}
		d.cancel()
	})
}

// spendHistory is a client's spend in 5-minute slots over 24 hours.
type spendHistory struct {
	first time.Time
	usd   [ringSlots]float64
	slot  [ringSlots]int64 // which slot number each entry holds
}

func slotOf(t time.Time) int64 { return t.Unix() / int64(slotLen/time.Second) }

func (h *spendHistory) add(n int64, usd float64) {
	i := int(n % ringSlots)
	if h.slot[i] != n {
		h.slot[i], h.usd[i] = n, 0
	}
	h.usd[i] += usd
}

// sum adds the slots numbered from..to inclusive.
func (h *spendHistory) sum(from, to int64) float64 {
	s := 0.0
	for n := max(from, 0); n <= to; n++ {
		if i := int(n % ringSlots); h.slot[i] == n {
			s += h.usd[i]
		}
	}
	return s
}

// Spend records usd spent by client at now and alerts when the last hour
// is far above the trailing hourly average.
func (d *Detector) Spend(client string, usd float64, now time.Time) {
	if d == nil || client == "" || !(usd > 0) || math.IsInf(usd, 0) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.spend[client]
	if h == nil {
		if len(d.spend) >= maxClients {
			return
		}
		h = &spendHistory{first: now}
		d.spend[client] = h
	}
	cur := slotOf(now)
	if cur < 0 {
		return
	}
	h.add(cur, usd)
	last := h.sum(cur-slotsPerHour+1, cur)
	// History: the hours before the last one, as far back as the client
	// has been seen (at most historyHours).
	span := now.Sub(h.first) - time.Hour
	if span < time.Hour || last < MinSpendUSD {
		return
	}
	hours := min(int64(span/time.Hour), historyHours)
	histTo := cur - slotsPerHour
	avg := h.sum(histTo-hours*slotsPerHour+1, histTo) / float64(hours)
	if last <= d.cfg.SpendFactor*avg {
		return
	}
	d.raise(Alert{
		Kind: KindSpend, Subject: client, Client: client, Time: now,
		LastHourUSD: round(last), HourlyAverageUSD: round(avg),
		Message: fmt.Sprintf("client %q spent $%.2f in the last hour, above %g times its hourly average of $%.4f over the previous %d hour(s)",
			client, last, d.cfg.SpendFactor, avg, hours),
	})
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// KeyUse records a successful use of client's key (keyHash, for the alert)
// from ip and alerts when ip is new for the client. The first address a
// client is seen from is learned without an alert.
func (d *Detector) KeyUse(client, keyHash, ip string, now time.Time) {
	if d == nil || !d.cfg.NewIP || client == "" || ip == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	set := d.ips[client]
	if set == nil {
		if len(d.ips) >= maxClients {
			return
		}
		d.ips[client] = map[string]time.Time{ip: now}
		return
	}
	if _, ok := set[ip]; ok {
		set[ip] = now
		return
	}
	known := len(set)
	if known >= maxIPsPerClient {
		evictOldest(set)
	}
	set[ip] = now
	d.raise(Alert{
		Kind: KindNewIP, Subject: client, Client: client, IP: ip, KeyHash: keyHash, KnownIPs: known, Time: now,
		Message: fmt.Sprintf("client %q key %s used from a new address %s (%d address(es) seen before)", client, keyHash, ip, known),
	})
}

func evictOldest(set map[string]time.Time) {
	var oldest string
	var at time.Time
	for ip, t := range set {
		if oldest == "" || t.Before(at) {
			oldest, at = ip, t
		}
	}
	delete(set, oldest)
}

// failures is the times of an address's latest failures, oldest first.
type failures struct{ at []time.Time }

// AuthFailure records a failed authentication from ip and alerts when ip
// reaches auth_failures within a minute.
func (d *Detector) AuthFailure(ip string, now time.Time) {
	if d == nil || ip == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.failures[ip]
	if f == nil {
		if len(d.failures) >= maxFailingIPs {
			d.pruneFailures(now)
		}
		f = &failures{}
		d.failures[ip] = f
	}
	n := d.cfg.AuthFailures
	f.at = append(f.at, now)
	if len(f.at) > n {
		f.at = f.at[len(f.at)-n:]
	}
	if len(f.at) < n || now.Sub(f.at[0]) >= failureWindow {
		return
	}
	d.raise(Alert{
		Kind: KindAuthFailures, Subject: ip, IP: ip, Failures: n, Time: now,
		Message: fmt.Sprintf("%d failed authentications from %s within %s", n, ip, now.Sub(f.at[0]).Round(time.Millisecond)),
	})
}

// pruneFailures makes room for one address: at most once a minute it
// forgets every address whose last failure is over a minute old; if that
// frees nothing, it forgets one arbitrary address, so a flood of addresses
// costs O(1) per failure and memory stays bounded.
func (d *Detector) pruneFailures(now time.Time) {
	if now.Sub(d.swept) >= failureWindow || now.Before(d.swept) {
		d.swept = now
		for ip, f := range d.failures {
			if now.Sub(f.at[len(f.at)-1]) >= failureWindow {
				delete(d.failures, ip)
			}
		}
	}
	if len(d.failures) < maxFailingIPs {
		return
	}
	for ip := range d.failures {
		delete(d.failures, ip)
		return
	}
}

// raise logs and queues a, unless (kind, subject) fired within the hour.
// d.mu is held.
func (d *Detector) raise(a Alert) {
	key := a.Kind + "\x00" + a.Subject
	if t, ok := d.fired[key]; ok && a.Time.Sub(t) < dedupeFor {
		return
	}
	if len(d.fired) >= maxFired {
		for k, t := range d.fired {
			if a.Time.Sub(t) >= dedupeFor {
				delete(d.fired, k)
			}
		}
	}
	d.fired[key] = a.Time
	a.Type, a.Environment = "anomaly_alert", d.env
	d.log.Warn("anomaly alert", "kind", a.Kind, "subject", a.Subject, "client", a.Client, "ip", a.IP,
		"key_hash", a.KeyHash, "message", a.Message)
	if d.cfg.Webhook == "" || d.closed {
		return
	}
	body, err := json.Marshal(a)
	if err != nil {
		d.log.Error("anomaly: encoding alert", "err", err)
		return
	}
	select {
	case d.queue <- body:
	default:
		d.dropped++
		d.log.Warn("anomaly: webhook queue full; alert only logged", "kind", a.Kind, "subject", a.Subject, "dropped", d.dropped)
	}
}

// send posts queued alerts until the queue is closed and drained.
func (d *Detector) send() {
	defer close(d.done)
	for body := range d.queue {
		d.post(body)
	}
}

func (d *Detector) post(body []byte) {
	ctx, cancel := context.WithTimeout(d.ctx, PostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		d.log.Error("anomaly: building webhook request", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "moat-anomaly-alert")
	resp, err := d.http.Do(req)
	if err != nil {
		// A url.Error repeats the URL, whose path or query may be a secret
		// (chat webhooks are): log only the cause and the host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		d.log.Error("anomaly: posting alert failed", "webhook", webhookHost(d.cfg.Webhook), "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		d.log.Error("anomaly: webhook answered an error", "webhook", webhookHost(d.cfg.Webhook), "status", resp.StatusCode)
	}
}

// webhookHost is the webhook's scheme and host, for logs: the rest of a
// webhook URL is often a credential.
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Scheme + "://" + u.Host
}
