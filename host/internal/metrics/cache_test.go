package metrics

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// The uncached calls, as they were before the series caches: the
// reference of TestSeriesCacheMatchesUncached.
func (m *Metrics) refRequest(endpoint, route, client string, status int, total, gateway time.Duration) {
	ep := m.endpoints.get(endpoint)
	m.requests.WithLabelValues(ep, m.routes.get(route), m.clients.get(client), m.status(status)).Inc()
	m.latency.WithLabelValues(ep).Observe(total.Seconds())
	m.gatewayLatency.WithLabelValues(ep).Observe(gateway.Seconds())
}

func (m *Metrics) refUsage(client, model string, input, output, cacheRead, cacheWrite int64, costUSD float64) {
	c, md := m.clients.get(client), m.models.get(model)
	for _, t := range [...]struct {
		kind string
		n    int64
	}{{"input", input}, {"output", output}, {"cache_read", cacheRead}, {"cache_write", cacheWrite}} {
		if t.n > 0 {
			m.tokens.WithLabelValues(c, md, t.kind).Add(float64(t.n))
		}
	}
	if costUSD > 0 {
		m.spend.WithLabelValues(c, md).Add(costUSD)
	}
}

func (m *Metrics) refPluginCall(plugin, phase, verdict string, d time.Duration) {
	p, ph := m.plugins.get(plugin), m.phases.get(phase)
	m.pluginCalls.WithLabelValues(p, ph, m.verdicts.get(verdict)).Inc()
	m.pluginLatency.WithLabelValues(p, ph).Observe(d.Seconds())
}

// moatLines keeps the moat_ series of an exposition, without build info.
func moatLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "moat_") && !strings.HasPrefix(l, "moat_build_info") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestSeriesCacheMatchesUncached drives a cached and an uncached Metrics
// with the same calls, past every label cap and past the cache's own
// bound, with hostile values, from more goroutines than cores, and
// compares what /metrics shows.
func TestSeriesCacheMatchesUncached(t *testing.T) {
	opts := Options{MaxValues: 7, Clients: []string{"app", "web"}}
	cached, ref := New(opts), New(opts)
	key := "sk-ant-" + strings.Repeat("k", 30)
	calls := func(i int) (endpoint, route, client, model, plugin, verdict string, status int) {
		endpoint = []string{"/v1/messages", "/v1/models", fmt.Sprintf("/p/%d", i%11)}[i%3]
		route = []string{"", "sum", fmt.Sprintf("r%d", i%13), key}[i%4]
		client = []string{"app", "web", fmt.Sprintf("c%d", i%5), "bad\x00"}[i%4]
		model = fmt.Sprintf("model-%d", i) // past maxCachedSeries distinct values
		plugin = []string{"pii", "secret", fmt.Sprintf("p%d", i%17), strings.Repeat("x", 200)}[i%4]
		verdict = []string{"allow", "modify", "reject", fmt.Sprintf("v%d", i%19)}[i%4]
		status = []int{200, 429, 502, 999, 42}[i%5]
		return
	}
	const workers, per = 8, 700 // 5600 calls, more distinct models than maxCachedSeries
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				i := w*per + j
				ep, rt, cl, md, pl, vd, st := calls(i)
				d := time.Duration(i%50) * time.Millisecond
				cached.Request(ep, rt, cl, st, d, d/2)
				cached.Usage(cl, md, int64(i%3), int64(i%2), 0, int64(i%4), float64(i%3))
				cached.PluginCall(pl, []string{"input", "output", "x"}[i%3], vd, d)
			}
		}()
	}
	wg.Wait()
	// The reference runs the same calls serially. Which values fill a
	// capped label set depends on the goroutines' order, so compare what
	// does not: each family's total.
	for w := range workers {
		for j := range per {
			i := w*per + j
			ep, rt, cl, md, pl, vd, st := calls(i)
			d := time.Duration(i%50) * time.Millisecond
			ref.refRequest(ep, rt, cl, st, d, d/2)
			ref.refUsage(cl, md, int64(i%3), int64(i%2), 0, int64(i%4), float64(i%3))
			ref.refPluginCall(pl, []string{"input", "output", "x"}[i%3], vd, d)
		}
	}
	got, want := moatLines(scrape(t, cached)), moatLines(scrape(t, ref))
	if !maps.EqualFunc(sumValues(got), sumValues(want), func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }) {
		t.Errorf("series totals differ:\n got %v\nwant %v", sumValues(got), sumValues(want))
	}
	if strings.Contains(got, key) || strings.Contains(got, "bad\x00") {
		t.Error("a hostile label value reached /metrics")
	}
}

// TestSeriesCacheSerialIdentical compares, call for call from one
// goroutine, the whole exposition of the cached and uncached calls.
func TestSeriesCacheSerialIdentical(t *testing.T) {
	opts := Options{MaxValues: 5}
	cached, ref := New(opts), New(opts)
	for i := range maxCachedSeries + 500 {
		ep, rt, cl, md := fmt.Sprintf("/e%d", i%9), fmt.Sprintf("r%d", i%8), fmt.Sprintf("c%d", i%7), fmt.Sprintf("m%d", i)
		d := time.Duration(i%40) * time.Millisecond
		cached.Request(ep, rt, cl, 200+i%3, d, d)
		ref.refRequest(ep, rt, cl, 200+i%3, d, d)
		cached.Usage(cl, md, 1, 2, 3, 4, 0.5)
		ref.refUsage(cl, md, 1, 2, 3, 4, 0.5)
		cached.PluginCall(rt, "input", ep, d)
		ref.refPluginCall(rt, "input", ep, d)
	}
	if got, want := moatLines(scrape(t, cached)), moatLines(scrape(t, ref)); got != want {
		t.Fatalf("expositions differ:\n--- cached\n%s\n--- uncached\n%s", got, want)
	}
}

// sumValues totals the samples of each metric family (label values may be
// assigned in a different order under concurrency; totals may not differ).
func sumValues(lines string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(lines, "\n") {
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		var v float64
		if i := strings.LastIndexByte(l, ' '); i >= 0 {
			fmt.Sscan(l[i+1:], &v)
		}
		out[name] += v
	}
	return out
}
