// Package metrics holds moat's Prometheus metrics on a registry of their
// own (not the global one) and serves them for /metrics.
//
// Label values are client ids, route names, model names, plugin names and
// fixed kinds, never user content or keys. Every label that can carry a
// caller-influenced value is bounded: values outside the configured allow
// list, past a per-label cap of distinct values, invalid UTF-8, too long or
// shaped like a key are reported as "other".
package metrics

import (
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// Namespace prefixes every metric name.
const Namespace = "moat"

// Other replaces a label value that is not allowed or over the cap.
const Other = "other"

// DefaultMaxValues caps the distinct values of one label when
// Options.MaxValues is zero.
const DefaultMaxValues = 100

// maxLabelLen is the longest label value kept as is.
const maxLabelLen = 128

// Options configure New. The zero value is usable: no allow lists (the
// first DefaultMaxValues distinct values of each label are kept) and the
// version from the binary's build info.
type Options struct {
	// Environment labels moat_build_info.
	Environment string
	// Version labels moat_build_info; "" reads the module version.
	Version string
	// Clients, Routes, Models and Plugins, when not nil, are the only values
	// kept for those labels (typically from config); others become "other".
	Clients, Routes, Models, Plugins []string
	// MaxValues caps distinct values per label (endpoints, routes, models,
	// clients, plugins, kinds); 0 means DefaultMaxValues.
	MaxValues int
}

// Metrics is the set of moat's metrics. Build it with New; a nil *Metrics
// ignores every call (so tests and tools can run without metrics).
type Metrics struct {
	reg *prometheus.Registry
	// own are moat's collectors (moat_*), for Names.
	own []prometheus.Collector

	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	gatewayLatency *prometheus.HistogramVec
	pluginCalls    *prometheus.CounterVec
	pluginLatency  *prometheus.HistogramVec
	pluginErrors   *prometheus.CounterVec
	breakerState   *prometheus.GaugeVec
	breakerChanges *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	spend          *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	inFlight       prometheus.Gauge
	auditFailures  prometheus.Counter
	cpSeq          prometheus.Gauge
	cpTime         prometheus.Gauge
	cpHead         prometheus.Gauge
	cpFailures     prometheus.Counter
	auditSampled   prometheus.Counter

	endpoints, routes, clients, models, plugins, phases, verdicts, kinds, causes, states *labelSet

	statusMu sync.RWMutex
	statuses map[int]string

	// Series already resolved, by raw label values: one map lookup per
	// call instead of a label check and a hash of every label value.
	reqSeries    seriesCache[reqKey, *reqObservers]
	tokenSeries  seriesCache[usageKey, prometheus.Counter]
	pluginSeries seriesCache[pluginKey, *pluginObservers]
}

type reqKey struct {
	endpoint, route, client string
	status                  int
}

type reqObservers struct {
	requests         prometheus.Counter
	latency, gateway prometheus.Observer
}

// usageKey names a tokens_total series (kind "input", ...) or, with kind
// "", a spend_usd_total series.
type usageKey struct{ client, model, kind string }

type pluginKey struct{ plugin, phase, verdict string }

type pluginObservers struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// maxCachedSeries bounds each series cache; past it, calls resolve their
// series each time (label values stay bounded by the label sets anyway).
const maxCachedSeries = 4096

// seriesCache maps raw label values to their resolved series. A label
// set's answer for a value never changes (a value kept stays kept, and one
// refused because the set is full stays refused), so caching by the raw
// values gives the same series as resolving them again.
type seriesCache[K comparable, V any] struct {
	m sync.Map
	n atomic.Int64
}

func (c *seriesCache[K, V]) get(k K, resolve func() V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v := resolve()
	if c.n.Load() < maxCachedSeries {
		if _, loaded := c.m.LoadOrStore(k, v); !loaded {
			c.n.Add(1)
		}
	}
	return v
}

// New builds the metrics on a fresh registry, with the Go runtime and
// process collectors.
func New(opts Options) *Metrics {
	max := opts.MaxValues
	if max <= 0 {
		max = DefaultMaxValues
	}
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		endpoints: newLabelSet(nil, max),
		routes:    newLabelSet(opts.Routes, max),
		clients:   newLabelSet(opts.Clients, max),
		models:    newLabelSet(opts.Models, max),
		plugins:   newLabelSet(opts.Plugins, max),
		phases:    newLabelSet([]string{"input", "output"}, max),
		verdicts:  newLabelSet(nil, 16),
		kinds:     newLabelSet(nil, 32),
		causes:    newLabelSet(pluginerr.CauseNames(), 32),
		states:    newLabelSet(BreakerStates, 8),
		statuses:  map[int]string{},
	}
	latencyBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	gatewayBuckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Requests handled, by endpoint, route, client and HTTP status.",
	}, []string{"endpoint", "route", "client", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help: "Whole request latency, upstream included.", Buckets: latencyBuckets,
	}, []string{"endpoint"})
	m.gatewayLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "gateway_duration_seconds",
		Help: "Latency added by moat (request latency minus upstream time).", Buckets: gatewayBuckets,
	}, []string{"endpoint"})
	m.pluginCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "plugin_calls_total",
		Help: "Plugin invocations by plugin, phase and verdict.",
	}, []string{"plugin", "phase", "verdict"})
	m.pluginLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "plugin_duration_seconds",
		Help: "Plugin run time.", Buckets: gatewayBuckets,
	}, []string{"plugin", "phase"})
	m.pluginErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "plugin_errors_total",
		Help: "Failed plugin calls by plugin, phase and cause (timeout, trap_stack_overflow, saturated, quarantined, ...).",
	}, []string{"plugin", "phase", "cause"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "plugin_breaker_state",
		Help: "1 for the current state of each plugin's circuit breaker (closed, open, half_open), 0 for the others.",
	}, []string{"plugin", "state"})
	m.breakerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "plugin_breaker_transitions_total",
		Help: "Circuit breaker state changes by plugin and the state entered.",
	}, []string{"plugin", "state"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "limit_refusals_total",
		Help: "Requests refused by a rate limit or budget, by client and kind.",
	}, []string{"client", "kind"})
	m.spend = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "spend_usd_total",
		Help: "Estimated spend in US dollars by client and model.",
	}, []string{"client", "model"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "tokens_total",
		Help: "Tokens by client, model and kind (input, output, cache_read, cache_write).",
	}, []string{"client", "model", "kind"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "upstream_errors_total",
		Help: "Failed upstream calls by kind.",
	}, []string{"kind"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "requests_in_flight",
		Help: "Requests being handled.",
	})
	m.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "audit_write_failures_total",
		Help: "Audit records that could not be written.",
	})
	m.cpSeq = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "audit_checkpoint_seq",
		Help: "Sequence number of the latest audit checkpoint (records up to it are durable and checkpointed).",
	})
	m.cpTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "audit_checkpoint_timestamp_seconds",
		Help: "Unix time of the latest audit checkpoint.",
	})
	m.cpHead = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "audit_checkpoint_head_prefix",
		Help: "The first 12 hex digits (48 bits) of the latest checkpoint's head hash, as a number; with audit_checkpoint_seq, a scraped history of the trail that moat audit verify --checkpoint can check.",
	})
	m.cpFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "audit_checkpoint_failures_total",
		Help: "Audit checkpoints a store (the checkpoint file, Redis) could not save.",
	})
	m.auditSampled = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "audit_unauthenticated_sampled_out_total",
		Help: "Audit records of unauthenticated requests left out past audit.unauthenticated_rate (the next record written carries the count).",
	})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; labels name the moat version, Go version and environment.",
	}, []string{"version", "go_version", "environment"})
	info.WithLabelValues(clean(version(opts.Version)), runtime.Version(), clean(opts.Environment)).Set(1)

	m.own = []prometheus.Collector{m.requests, m.latency, m.gatewayLatency, m.pluginCalls, m.pluginLatency,
		m.pluginErrors, m.breakerState, m.breakerChanges,
		m.refusals, m.spend, m.tokens, m.upstreamErrors, m.inFlight, m.auditFailures, info,
		m.cpSeq, m.cpTime, m.cpHead, m.cpFailures, m.auditSampled}
	m.reg.MustRegister(m.own...)
	m.reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func version(v string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// fqName finds a family's name in a Desc's description.
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names returns the names of moat's own metric families (moat_*, not the
// Go and process collectors), sorted: what a test must see move.
func (m *Metrics) Names() []string {
	ch := make(chan *prometheus.Desc, len(m.own))
	go func() {
		for _, c := range m.own {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		if sm := fqName.FindStringSubmatch(d.String()); sm != nil {
			names = append(names, sm[1])
		}
	}
	sort.Strings(names)
	return names
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry the metrics live on, for other components to add
// their own collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Request records one finished request: endpoint is the HTTP path template
// ("/v1/messages"), route the named route or "", client the client id.
// total is the whole latency, gateway the part spent in moat.
func (m *Metrics) Request(endpoint, route, client string, status int, total, gateway time.Duration) {
	if m == nil {
		return
	}
	o := m.reqSeries.get(reqKey{endpoint, route, client, status}, func() *reqObservers {
		ep := m.endpoints.get(endpoint)
		return &reqObservers{
			requests: m.requests.WithLabelValues(ep, m.routes.get(route), m.clients.get(client), m.status(status)),
			latency:  m.latency.WithLabelValues(ep),
			gateway:  m.gatewayLatency.WithLabelValues(ep),
		}
	})
	o.requests.Inc()
	o.latency.Observe(total.Seconds())
	o.gateway.Observe(gateway.Seconds())
}

// Usage records the tokens and estimated cost of one upstream call.
func (m *Metrics) Usage(client, model string, input, output, cacheRead, cacheWrite int64, costUSD float64) {
	if m == nil {
		return
	}
	for _, t := range [...]struct {
		kind string
		n    int64
	}{{"input", input}, {"output", output}, {"cache_read", cacheRead}, {"cache_write", cacheWrite}} {
		if t.n > 0 {
			m.usageCounter(client, model, t.kind).Add(float64(t.n))
		}
	}
	if costUSD > 0 {
		m.usageCounter(client, model, "").Add(costUSD)
	}
}

// usageCounter returns the tokens_total series of kind, or with kind ""
// the spend_usd_total series, of client and model.
func (m *Metrics) usageCounter(client, model, kind string) prometheus.Counter {
	return m.tokenSeries.get(usageKey{client, model, kind}, func() prometheus.Counter {
		c, md := m.clients.get(client), m.models.get(model)
		if kind == "" {
			return m.spend.WithLabelValues(c, md)
		}
		return m.tokens.WithLabelValues(c, md, kind)
	})
}

// PluginCall records one plugin invocation; phase is "input" or "output",
// verdict the plugin's action ("allow", "modify", "reject", "error", ...).
func (m *Metrics) PluginCall(plugin, phase, verdict string, d time.Duration) {
	if m == nil {
		return
	}
	o := m.pluginSeries.get(pluginKey{plugin, phase, verdict}, func() *pluginObservers {
		p, ph := m.plugins.get(plugin), m.phases.get(phase)
		return &pluginObservers{
			calls:   m.pluginCalls.WithLabelValues(p, ph, m.verdicts.get(verdict)),
			latency: m.pluginLatency.WithLabelValues(p, ph),
		}
	})
	o.calls.Inc()
	o.latency.Observe(d.Seconds())
}

// PluginError records a failed plugin call with its cause (a name from
// host/internal/pluginerr; others are reported as "other").
func (m *Metrics) PluginError(plugin, phase, cause string) {
	if m == nil {
		return
	}
	m.pluginErrors.WithLabelValues(m.plugins.get(plugin), m.phases.get(phase), m.causes.get(cause)).Inc()
}

// BreakerStates are the values of the state label of the breaker metrics.
var BreakerStates = []string{"closed", "open", "half_open"}

// Breaker records that a plugin's circuit breaker entered state.
func (m *Metrics) Breaker(plugin, state string) {
	if m == nil {
		return
	}
	p, st := m.plugins.get(plugin), m.states.get(state)
	for _, s := range BreakerStates {
		v := 0.0
		if s == st {
			v = 1
		}
		m.breakerState.WithLabelValues(p, s).Set(v)
	}
	m.breakerChanges.WithLabelValues(p, st).Inc()
}

// LimitRefusal records a request refused by a limit; kind is e.g.
// "rate_limit", "token_limit" or "budget".
func (m *Metrics) LimitRefusal(client, kind string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(m.clients.get(client), m.kinds.get(kind)).Inc()
}

// UpstreamError records a failed upstream call; kind is e.g. "timeout",
// "connect", "status_5xx", "overloaded", "canceled".
func (m *Metrics) UpstreamError(kind string) {
	if m == nil {
		return
	}
	m.upstreamErrors.WithLabelValues(m.kinds.get(kind)).Inc()
}

// Start counts a request in flight; call the returned func when it ends.
func (m *Metrics) Start() (done func()) {
	if m == nil {
		return func() {}
	}
	m.inFlight.Inc()
	var once sync.Once
	return func() { once.Do(m.inFlight.Dec) }
}

// AuditWriteFailure counts an audit record that could not be written.
func (m *Metrics) AuditWriteFailure() {
	if m == nil {
		return
	}
	m.auditFailures.Inc()
}

// AuditCheckpoint shows the latest audit checkpoint: its seq, time and the
// first 48 bits of its head hash (exact in a float64).
func (m *Metrics) AuditCheckpoint(seq uint64, head string, at time.Time) {
	if m == nil {
		return
	}
	m.cpSeq.Set(float64(seq))
	m.cpTime.Set(float64(at.UnixNano()) / 1e9)
	if len(head) >= 12 {
		if v, err := strconv.ParseUint(head[:12], 16, 64); err == nil {
			m.cpHead.Set(float64(v))
		}
	}
}

// AuditCheckpointFailure counts a checkpoint a store could not save.
func (m *Metrics) AuditCheckpointFailure() {
	if m == nil {
		return
	}
	m.cpFailures.Inc()
}

// AuditSampledOut counts an unauthenticated request's audit line left out
// by the audit.unauthenticated_rate sampling.
func (m *Metrics) AuditSampledOut() {
	if m == nil {
		return
	}
	m.auditSampled.Inc()
}

// status returns the label of an HTTP status, cached; out-of-range codes
// are "other".
func (m *Metrics) status(code int) string {
	if code < 100 || code > 599 {
		return Other
	}
	m.statusMu.RLock()
	s, ok := m.statuses[code]
	m.statusMu.RUnlock()
	if ok {
		return s
	}
	s = strconv.Itoa(code)
	m.statusMu.Lock()
	m.statuses[code] = s
	m.statusMu.Unlock()
	return s
}

// labelSet bounds the values of one label.
type labelSet struct {
	allow map[string]bool // nil: any value, up to max
	max   int
	mu    sync.RWMutex
	seen  map[string]struct{}
}

func newLabelSet(allow []string, max int) *labelSet {
	s := &labelSet{max: max, seen: map[string]struct{}{}}
	if allow != nil {
		s.allow = make(map[string]bool, len(allow))
		for _, v := range allow {
			s.allow[v] = true
		}
	}
	return s
}

// get returns v if it may be a label value, "other" otherwise. An empty
// value is "none".
func (s *labelSet) get(v string) string {
	if v == "" {
		return "none"
	}
	s.mu.RLock()
	_, ok := s.seen[v]
	s.mu.RUnlock()
	if ok {
		return v
	}
	if s.allow != nil && !s.allow[v] {
		return Other
	}
	if clean(v) != v {
		return Other
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; ok {
		return v
	}
	if len(s.seen) >= s.max {
		return Other
	}
	s.seen[v] = struct{}{}
	return v
}

// clean returns v when it is safe as a label value, Other when it is too
// long, not UTF-8, holds control characters or looks like a key.
func clean(v string) string {
	if len(v) > maxLabelLen || !utf8.ValidString(v) || looksLikeKey(v) {
		return Other
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return Other
		}
	}
	return v
}

func looksLikeKey(v string) bool {
	return strings.Contains(v, "sk-ant-") || strings.Contains(v, "moat_") ||
		strings.HasPrefix(strings.ToLower(v), "bearer ")
}
