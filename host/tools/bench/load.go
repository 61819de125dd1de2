package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LoadSpec is one bounded load: Concurrency workers each sending Body to
// URL back to back (or paced, with Rate) over keep-alive connections, for
// Warmup and then Duration. Only requests that start and end inside the
// measured Duration count.
type LoadSpec struct {
	URL    string
	Header http.Header
	Body   []byte
	// Stream reads the response as SSE: the time to the first body byte and
	// to the first text delta are recorded, and a stream that does not end
	// with message_stop is an error.
	Stream      bool
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	// Rate, when positive, paces the workers together to at most Rate
	// requests per second (an open-loop load); zero sends back to back.
	Rate float64
	// OnStart and OnEnd run at the start and the end of the measured window
	// (to read a process's CPU time there).
	OnStart, OnEnd func()
	// Client is the HTTP client; nil means a fresh keep-alive client sized
	// for Concurrency.
	Client *http.Client
	// TextTimeline parses each stream's SSE events: FirstText is then the
	// first text_delta event (not the first chunk naming a delta) and
	// MeanText is filled.
	TextTimeline bool
}

// LoadResult is what a load measured.
type LoadResult struct {
	// OK counts the successful requests measured, Errors the failed ones;
	// Status counts every measured response by status code (0 for a
	// transport error) and FirstError describes the first failure.
	OK, Errors int
	Status     map[int]int
	FirstError string
	// Window is the measured time.
	Window time.Duration
	// Latency holds the sorted latencies of the successful requests (to the
	// end of the body); TTFB the sorted times to the first body byte and
	// FirstText the sorted times to the first text delta (streams only).
	Latency, TTFB, FirstText []time.Duration
	// MeanText holds, per successful stream with TextTimeline, the
	// byte-weighted mean arrival time of its text, unsorted.
	MeanText []time.Duration
}

// merge returns r and o together (o alone when r is nil): counts and
// windows added, samples merged in order.
func (r *LoadResult) merge(o *LoadResult) *LoadResult {
	if r == nil {
		return o
	}
	r.OK += o.OK
	r.Errors += o.Errors
	if r.Status == nil {
		r.Status = map[int]int{}
	}
	for k, v := range o.Status {
		r.Status[k] += v
	}
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.Window += o.Window
	r.Latency = mergeSorted(r.Latency, o.Latency)
	r.TTFB = mergeSorted(r.TTFB, o.TTFB)
	r.FirstText = mergeSorted(r.FirstText, o.FirstText)
	r.MeanText = append(r.MeanText, o.MeanText...)
	return r
}

// mergeSorted merges two sorted slices into a new sorted one.
func mergeSorted(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0] < a[0] {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// RPS is successful requests per second over the window.
func (r *LoadResult) RPS() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// Quantile returns the q-quantile (0..1) of sorted durations by the
// nearest-rank method, or 0 when there are none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// NewClient returns a keep-alive client for conc concurrent requests to
// loopback targets, without compression (so no gateway is asked to gzip).
func NewClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conc + 4,
		MaxIdleConnsPerHost: conc + 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

type sample struct {
	start, end time.Time
	ttfb       time.Duration
	firstText  time.Duration
	meanText   time.Duration
	status     int
	err        error
}

// Load runs spec and returns its measurements. It returns an error only
// when ctx ends or the spec is invalid; failed requests are counted.
func Load(ctx context.Context, spec LoadSpec) (*LoadResult, error) {
	if spec.Concurrency < 1 || spec.Duration <= 0 || spec.URL == "" {
		return nil, fmt.Errorf("load: need a URL, concurrency >= 1 and a positive duration (got %q, %d, %s)", spec.URL, spec.Concurrency, spec.Duration)
	}
	client := spec.Client
	if client == nil {
		client = NewClient(spec.Concurrency)
		defer client.CloseIdleConnections()
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pace <-chan time.Time
	if spec.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / spec.Rate))
		defer t.Stop()
		pace = t.C
	}
	begin := time.Now()
	t0 := begin.Add(spec.Warmup)
	t1 := t0.Add(spec.Duration)
	samples := make([][]sample, spec.Concurrency)
	var wg sync.WaitGroup
	for w := range spec.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if pace != nil {
					select {
					case <-pace:
					case <-lctx.Done():
						return
					}
				}
				if lctx.Err() != nil || time.Now().After(t1) {
					return
				}
				do := doRequest
				if spec.TextTimeline {
					do = pacedTextRequest
				}
				s := do(lctx, client, &spec)
				if lctx.Err() != nil {
					return
				}
				if !s.start.Before(t0) && !s.end.After(t1) {
					samples[w] = append(samples[w], s)
				}
			}
		}()
	}
	// Mark the window's edges for the CPU readings.
	marks := make(chan struct{})
	go func() {
		defer close(marks)
		if !sleepUntil(lctx, t0) {
			return
		}
		if spec.OnStart != nil {
			spec.OnStart()
		}
		if !sleepUntil(lctx, t1) {
			return
		}
		if spec.OnEnd != nil {
			spec.OnEnd()
		}
		// Requests still running past the window are not measured: cut
		// them off so the load ends on time.
		cancel()
	}()
	<-marks
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &LoadResult{Status: map[int]int{}, Window: spec.Duration}
	for _, ws := range samples {
		for _, s := range ws {
			res.Status[s.status]++
			if s.err != nil {
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = s.err.Error()
				}
				continue
			}
			res.OK++
			res.Latency = append(res.Latency, s.end.Sub(s.start))
			if spec.Stream {
				res.TTFB = append(res.TTFB, s.ttfb)
				res.FirstText = append(res.FirstText, s.firstText)
				if spec.TextTimeline {
					res.MeanText = append(res.MeanText, s.meanText)
				}
			}
		}
	}
	slices.Sort(res.Latency)
	slices.Sort(res.TTFB)
	slices.Sort(res.FirstText)
	return res, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var (
	deltaMark = []byte("content_block_delta")
	stopMark  = []byte("message_stop")
)

// errIncomplete is a stream that ended without message_stop.
var errIncomplete = errors.New("stream ended without message_stop")

// send posts spec.Body and returns the response of a 200; any other
// outcome is recorded in s (and the body closed).
func send(ctx context.Context, client *http.Client, spec *LoadSpec, s *sample) *http.Response {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.URL, bytes.NewReader(spec.Body))
	if err != nil {
		s.err = err
		return nil
	}
	for k, v := range spec.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		return nil
	}
	s.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		s.err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		return nil
	}
	return resp
}

func doRequest(ctx context.Context, client *http.Client, spec *LoadSpec) (s sample) {
	s.start = time.Now()
	defer func() { s.end = time.Now() }()
	resp := send(ctx, client, spec, &s)
	if resp == nil {
		return s
	}
	defer resp.Body.Close()
	if !spec.Stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			s.err = fmt.Errorf("reading body: %w", err)
		}
		return s
	}
	buf := make([]byte, 16<<10)
	// tail keeps the last bytes read, so a mark split across reads is seen.
	tail := make([]byte, 0, 64)
	sawStop := false
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			now := time.Since(s.start)
			if s.ttfb == 0 {
				s.ttfb = now
			}
			win := append(tail, buf[:min(n, 64)]...)
			if s.firstText == 0 && (bytes.Contains(win, deltaMark) || bytes.Contains(buf[:n], deltaMark)) {
				s.firstText = now
			}
			if bytes.Contains(win, stopMark) || bytes.Contains(buf[:n], stopMark) {
				sawStop = true
			}
			keep := buf[max(0, n-32):n]
			tail = append(tail[:0], keep...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.err = fmt.Errorf("reading stream: %w", err)
			return s
		}
	}
	if !sawStop {
		s.err = errIncomplete
	}
	return s
}
