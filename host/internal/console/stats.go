package console

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/moat-gateway/moat/host/internal/metrics"
)

// Sampling of the metrics for the overview's sparklines.
const (
	// SampleEvery is the least time between two samples kept in the ring.
	SampleEvery = 2 * time.Second
	// ringSize samples are kept (four minutes at SampleEvery).
	ringSize = 120
	// quantileWindow is the span the overview's p50/p99 cover.
	quantileWindow = time.Minute
)

// Metric names read from the registry.
const (
	mRequests       = metrics.Namespace + "_requests_total"
	mLatency        = metrics.Namespace + "_request_duration_seconds"
	mSpend          = metrics.Namespace + "_spend_usd_total"
	mRefusals       = metrics.Namespace + "_limit_refusals_total"
	mUpstreamErrors = metrics.Namespace + "_upstream_errors_total"
	mInFlight       = metrics.Namespace + "_requests_in_flight"
	mPluginCalls    = metrics.Namespace + "_plugin_calls_total"
	mPluginLatency  = metrics.Namespace + "_plugin_duration_seconds"
	mPluginErrors   = metrics.Namespace + "_plugin_errors_total"
	mBreakerState   = metrics.Namespace + "_plugin_breaker_state"
)

// hist is a cumulative histogram: counts[i] observations were <= bounds[i].
type hist struct {
	bounds []float64
	counts []float64
	count  float64
}

// add merges o into h (buckets by upper bound).
func (h *hist) add(o *dto.Histogram) {
	for _, b := range o.GetBucket() {
		ub := b.GetUpperBound()
		i, found := slices.BinarySearch(h.bounds, ub)
		if !found {
			h.bounds = slices.Insert(h.bounds, i, ub)
			h.counts = slices.Insert(h.counts, i, 0)
		}
		h.counts[i] += float64(b.GetCumulativeCount())
	}
	h.count += float64(o.GetSampleCount())
}

// since returns the observations made after old (h minus old).
func (h hist) since(old hist) hist {
	out := hist{bounds: h.bounds, counts: make([]float64, len(h.counts)), count: h.count - old.count}
	for i, ub := range h.bounds {
		out.counts[i] = h.counts[i]
		if j, ok := slices.BinarySearch(old.bounds, ub); ok {
			out.counts[i] -= old.counts[j]
		}
	}
	return out
}

// quantile estimates the q-quantile like Prometheus' histogram_quantile:
// linear interpolation inside the bucket holding the rank; observations
// past the last finite bound report that bound. It returns nil without
// observations.
func (h hist) quantile(q float64) *float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return nil
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, ub := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(ub, 1) {
				return ptr(lower)
			}
			in := h.counts[i] - below
			if in <= 0 {
				return ptr(ub)
			}
			return ptr(lower + (ub-lower)*(rank-below)/in)
		}
		if !math.IsInf(ub, 1) {
			lower = ub
		}
		below = h.counts[i]
	}
	return ptr(lower)
}

func ptr(v float64) *float64 { return &v }

// pluginStat is what the metrics say about one plugin.
type pluginStat struct {
	verdicts map[string]float64
	causes   map[string]float64
	breaker  string // "" when it never changed (closed)
	latency  hist
}

// snapshot is one reading of the registry.
type snapshot struct {
	at             time.Time
	requests       float64
	errors         float64 // status >= 400 or unknown
	spend          float64
	refusals       float64
	upstreamErrors float64
	inFlight       float64
	latency        hist
	plugins        map[string]*pluginStat
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sum(f *dto.MetricFamily) float64 {
	t := 0.0
	for _, m := range f.GetMetric() {
		t += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return t
}

// gather reads the registry.
func gather(m *metrics.Metrics, now time.Time) (snapshot, error) {
	s := snapshot{at: now, plugins: map[string]*pluginStat{}}
	reg := m.Registry()
	if reg == nil {
		return s, errors.New("metrics are not available")
	}
	fams, err := reg.Gather()
	if err != nil {
		return s, fmt.Errorf("gathering metrics: %w", err)
	}
	plugin := func(name string) *pluginStat {
		p := s.plugins[name]
		if p == nil {
			p = &pluginStat{verdicts: map[string]float64{}, causes: map[string]float64{}}
			s.plugins[name] = p
		}
		return p
	}
	for _, f := range fams {
		switch f.GetName() {
		case mRequests:
			for _, mt := range f.GetMetric() {
				v := mt.GetCounter().GetValue()
				s.requests += v
				if code, err := strconv.Atoi(label(mt, "status")); err != nil || code >= 400 {
					s.errors += v
				}
			}
		case mLatency:
			for _, mt := range f.GetMetric() {
				s.latency.add(mt.GetHistogram())
			}
		case mSpend:
			s.spend = sum(f)
		case mRefusals:
			s.refusals = sum(f)
		case mUpstreamErrors:
			s.upstreamErrors = sum(f)
		case mInFlight:
			s.inFlight = sum(f)
		case mPluginCalls:
			for _, mt := range f.GetMetric() {
				plugin(label(mt, "plugin")).verdicts[label(mt, "verdict")] += mt.GetCounter().GetValue()
			}
		case mPluginLatency:
			for _, mt := range f.GetMetric() {
				plugin(label(mt, "plugin")).latency.add(mt.GetHistogram())
			}
		case mPluginErrors:
			for _, mt := range f.GetMetric() {
				plugin(label(mt, "plugin")).causes[label(mt, "cause")] += mt.GetCounter().GetValue()
			}
		case mBreakerState:
			for _, mt := range f.GetMetric() {
				if mt.GetGauge().GetValue() == 1 {
					plugin(label(mt, "plugin")).breaker = label(mt, "state")
				}
			}
		}
	}
	return s, nil
}

// ring keeps the last samples, oldest first.
type ring struct {
	buf  []snapshot
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]snapshot, n)} }

func (r *ring) push(s snapshot) {
	s.plugins = nil // the ring keeps totals only
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// all returns the samples, oldest first.
func (r *ring) all() []snapshot {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}

// Overview is the overview page's data (GET api/overview).
type Overview struct {
	At time.Time `json:"at"`
	// Totals since moat started.
	Requests       float64 `json:"requests"`
	Errors         float64 `json:"errors"`
	Refusals       float64 `json:"refusals"`
	UpstreamErrors float64 `json:"upstream_errors"`
	InFlight       float64 `json:"in_flight"`
	// RPS and ErrorsPerSec over the last sampling interval.
	RPS          float64 `json:"rps"`
	ErrorsPerSec float64 `json:"errors_per_sec"`
	// P50 and P99 are seconds over the last minute (nil without requests);
	// P50All and P99All since moat started.
	P50    *float64 `json:"p50"`
	P99    *float64 `json:"p99"`
	P50All *float64 `json:"p50_all"`
	P99All *float64 `json:"p99_all"`
	// Spend in USD estimated from the spend counter: since start, today and
	// this month (UTC; counted from the console's start when it started
	// later, and approximate at a day boundary nobody watched).
	SpendTotal float64   `json:"spend_total"`
	SpendToday float64   `json:"spend_today"`
	SpendMonth float64   `json:"spend_month"`
	Since      time.Time `json:"since"`
	// Series are the sparklines, one point per sample interval.
	Series Series `json:"series"`
}

// Series are per-interval rates for the sparklines; P99 entries are nil
// for intervals without requests.
type Series struct {
	T            []time.Time `json:"t"`
	RPS          []float64   `json:"rps"`
	ErrorsPerSec []float64   `json:"errors_per_sec"`
	P99          []*float64  `json:"p99"`
}

// spendBooks tracks the spend counter's value at the start of the current
// UTC day and month.
type spendBooks struct {
	day, month       string
	dayBase, monBase float64
	last             float64
	started          time.Time
}

func (b *spendBooks) observe(now time.Time, spend float64) {
	u := now.UTC()
	d, m := u.Format("2006-01-02"), u.Format("2006-01")
	if b.day == "" {
		b.day, b.month, b.started = d, m, now
		b.dayBase, b.monBase = 0, 0 // the counter started with moat
	}
	if d != b.day {
		b.day, b.dayBase = d, b.last
	}
	if m != b.month {
		b.month, b.monBase = m, b.last
	}
	b.last = spend
}

// overview samples the metrics (keeping a sample in the ring at most every
// SampleEvery) and returns the overview.
func (c *Console) overview() (Overview, error) {
	now := c.now()
	cur, err := gather(c.opts.Metrics, now)
	if err != nil {
		return Overview{}, err
	}
	c.sampleMu.Lock()
	defer c.sampleMu.Unlock()
	c.spend.observe(now, cur.spend)
	samples := c.ring.all()
	if len(samples) == 0 || now.Sub(samples[len(samples)-1].at) >= SampleEvery {
		c.ring.push(cur)
		samples = append(samples, cur)
	} else {
		samples[len(samples)-1] = cur // the freshest reading closes the series
	}
	o := Overview{
		At: now.UTC(), Requests: cur.requests, Errors: cur.errors, Refusals: cur.refusals,
		UpstreamErrors: cur.upstreamErrors, InFlight: cur.inFlight,
		P50All: cur.latency.quantile(.5), P99All: cur.latency.quantile(.99),
		SpendTotal: cur.spend, SpendToday: cur.spend - c.spend.dayBase, SpendMonth: cur.spend - c.spend.monBase,
		Since:  c.spend.started.UTC(),
		Series: Series{T: []time.Time{}, RPS: []float64{}, ErrorsPerSec: []float64{}, P99: []*float64{}},
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 {
			continue
		}
		o.Series.T = append(o.Series.T, b.at.UTC())
		o.Series.RPS = append(o.Series.RPS, (b.requests-a.requests)/dt)
		o.Series.ErrorsPerSec = append(o.Series.ErrorsPerSec, (b.errors-a.errors)/dt)
		o.Series.P99 = append(o.Series.P99, b.latency.since(a.latency).quantile(.99))
	}
	if n := len(o.Series.RPS); n > 0 {
		o.RPS, o.ErrorsPerSec = o.Series.RPS[n-1], o.Series.ErrorsPerSec[n-1]
	}
	// The window starts at the oldest sample within quantileWindow.
	base := hist{}
	for _, s := range samples {
		if now.Sub(s.at) <= quantileWindow {
			break
		}
		base = s.latency
	}
	w := cur.latency.since(base)
	o.P50, o.P99 = w.quantile(.5), w.quantile(.99)
	return o, nil
}

// PluginRow is one plugin on the plugins page (GET api/plugins).
type PluginRow struct {
	Name    string             `json:"name"`
	Kind    string             `json:"kind"` // "builtin NAME (native)", "wasm PATH"
	Loaded  bool               `json:"loaded"`
	LoadMS  *float64           `json:"load_ms"`
	Calls   float64            `json:"calls"`
	Verdict map[string]float64 `json:"verdicts"`
	// Causes counts failed calls by cause ("timeout", "saturated", ...).
	Causes map[string]float64 `json:"causes"`
	// Breaker is the circuit breaker's state: "closed", "open"
	// (quarantined) or "half_open"; "" for a native plugin.
	Breaker string `json:"breaker"`
	// P50MS and P99MS are milliseconds since start, nil without calls.
	P50MS *float64 `json:"p50_ms"`
	P99MS *float64 `json:"p99_ms"`
}

// Verdicts shown in columns of their own; others are summed as "other".
var mainVerdicts = []string{"allow", "modify", "reject", "error"}

// pluginRows lists the configured plugins (and any others the metrics name)
// with their counts and latency.
func (c *Console) pluginRows() ([]PluginRow, error) {
	snap, err := gather(c.opts.Metrics, c.now())
	if err != nil {
		return nil, err
	}
	var loads map[string]time.Duration
	if c.opts.PluginLoadTimes != nil {
		loads = c.opts.PluginLoadTimes()
	}
	rows := []PluginRow{}
	seen := map[string]bool{}
	row := func(name, kind string, loaded bool) PluginRow {
		r := PluginRow{Name: name, Kind: kind, Loaded: loaded, Verdict: map[string]float64{}, Causes: map[string]float64{}}
		if d, ok := loads[name]; ok {
			r.LoadMS = ptr(float64(d) / float64(time.Millisecond))
		}
		if st := snap.plugins[name]; st != nil {
			maps.Copy(r.Causes, st.causes)
			r.Breaker = st.breaker
			for v, n := range st.verdicts {
				r.Calls += n
				if slices.Contains(mainVerdicts, v) {
					r.Verdict[v] += n
				} else {
					r.Verdict["other"] += n
				}
			}
			if q := st.latency.quantile(.5); q != nil {
				r.P50MS = ptr(*q * 1000)
			}
			if q := st.latency.quantile(.99); q != nil {
				r.P99MS = ptr(*q * 1000)
			}
		}
		return r
	}
	if cfg := c.config(); cfg != nil {
		for _, p := range cfg.Plugins {
			kind := "wasm " + p.Path
			if p.Builtin != "" {
				rt := p.Runtime
				if rt == "" {
					rt = "native"
				}
				kind = "builtin " + p.Builtin + " (" + rt + ")"
			}
			r := row(p.Name, kind, true)
			if p.Runtime == "wasm" && r.Breaker == "" {
				r.Breaker = "closed"
				if p.Breaker.Failures < 0 {
					r.Breaker = "off"
				}
			}
			rows = append(rows, r)
			seen[p.Name] = true
		}
	}
	var extra []string
	for name := range snap.plugins {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		rows = append(rows, row(name, "not in the running config", false))
	}
	return rows, nil
}
