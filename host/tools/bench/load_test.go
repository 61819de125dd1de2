package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		q    float64
		in   []time.Duration
		want time.Duration
	}{
		{.5, ds, 5}, {.99, ds, 10}, {1, ds, 10}, {0, ds, 1}, {.9, ds, 9}, {.5, nil, 0},
	}
	for _, tt := range tests {
		if got := Quantile(tt.in, tt.q); got != tt.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

// TestLoad drives real HTTP servers and checks what the load counts.
func TestLoad(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Test") != "yes" || string(b) != "body" {
			http.Error(w, "missing header or body", http.StatusBadRequest)
			return
		}
		switch {
		case r.URL.Path == "/fail" && n.Add(1)%2 == 0:
			http.Error(w, "every other request fails", http.StatusInternalServerError)
		case r.URL.Path == "/stream", r.URL.Path == "/cut":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message_start\ndata: {}\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(30 * time.Millisecond)
			io.WriteString(w, "event: content_block_delta\ndata: {}\n\n")
			if r.URL.Path == "/stream" {
				io.WriteString(w, "event: message_stop\ndata: {}\n\n")
			}
		default:
			io.WriteString(w, `{"type":"message"}`)
		}
	}))
	defer srv.Close()
	h := http.Header{"X-Test": {"yes"}}
	spec := func(path string, stream bool) LoadSpec {
		return LoadSpec{URL: srv.URL + path, Header: h, Body: []byte("body"), Stream: stream, Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
	}
	t.Run("all succeed", func(t *testing.T) {
		var started, ended atomic.Bool
		s := spec("/ok", false)
		s.OnStart = func() { started.Store(true) }
		s.OnEnd = func() { ended.Store(true) }
		res, err := Load(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK == 0 || res.Errors != 0 || len(res.Latency) != res.OK || res.Status[200] != res.OK {
			t.Fatalf("ok %d errors %d latencies %d status %v", res.OK, res.Errors, len(res.Latency), res.Status)
		}
		if !started.Load() || !ended.Load() {
			t.Error("window hooks not called")
		}
		if res.RPS() <= 0 || Quantile(res.Latency, .99) < Quantile(res.Latency, .5) {
			t.Errorf("rps %v p50 %v p99 %v", res.RPS(), Quantile(res.Latency, .5), Quantile(res.Latency, .99))
		}
	})
	t.Run("failures counted", func(t *testing.T) {
		res, err := Load(context.Background(), spec("/fail", false))
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors == 0 || res.OK == 0 || res.Status[500] != res.Errors || !strings.Contains(res.FirstError, "status 500") {
			t.Fatalf("ok %d errors %d status %v first %q", res.OK, res.Errors, res.Status, res.FirstError)
		}
	})
	t.Run("stream timings", func(t *testing.T) {
		res, err := Load(context.Background(), spec("/stream", true))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK == 0 || res.Errors != 0 || len(res.TTFB) != res.OK || len(res.FirstText) != res.OK {
			t.Fatalf("ok %d errors %d ttfb %d: %s", res.OK, res.Errors, len(res.TTFB), res.FirstError)
		}
		// The delta comes 30 ms after the first event, which may arrive
		// with it when the reader is late, but never after it.
		if ft, fb := Quantile(res.FirstText, .5), Quantile(res.TTFB, .5); ft < 30*time.Millisecond || fb > ft {
			t.Errorf("first text p50 %v, first byte p50 %v: want first text >= 30ms and first byte before it", ft, fb)
		}
	})
	t.Run("cut stream is an error", func(t *testing.T) {
		res, err := Load(context.Background(), spec("/cut", true))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 0 || res.Errors == 0 || res.FirstError != errIncomplete.Error() {
			t.Fatalf("ok %d errors %d first %q", res.OK, res.Errors, res.FirstError)
		}
	})
	t.Run("paced", func(t *testing.T) {
		s := spec("/ok", false)
		s.Rate = 100
		s.Warmup = 0
		s.Duration = 500 * time.Millisecond
		res, err := Load(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK < 20 || res.OK > 60 {
			t.Errorf("%d requests at 100/s in 0.5s, want about 50", res.OK)
		}
	})
	t.Run("bad spec", func(t *testing.T) {
		if _, err := Load(context.Background(), LoadSpec{URL: srv.URL}); err == nil {
			t.Error("zero concurrency and duration accepted")
		}
	})
	t.Run("cancel ends the load", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s := spec("/ok", false)
		s.Duration = time.Minute
		start := time.Now()
		if _, err := Load(ctx, s); err == nil {
			t.Error("cancelled load returned no error")
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("cancelled load took %v", time.Since(start))
		}
	})
}

func TestPromptAndBody(t *testing.T) {
	p := Prompt()
	if len(p) != PromptBytes {
		t.Fatalf("prompt is %d bytes, want %d", len(p), PromptBytes)
	}
	if strings.TrimSpace(p) != p[:len(strings.TrimRight(p, " "))] || len(strings.TrimRight(p, " ")) < PromptBytes-200 {
		t.Errorf("prompt is mostly padding: %d bytes of text", len(strings.TrimRight(p, " ")))
	}
	for _, stream := range []bool{false, true} {
		b := string(RequestBody(stream))
		if !strings.Contains(b, `"model":"`+Model+`"`) || strings.Contains(b, `"stream":true`) != stream {
			t.Errorf("body (stream %v) = %.200s", stream, b)
		}
	}
}

// FuzzMergeSorted: merging two sorted slices gives what sorting their
// concatenation gives.
func FuzzMergeSorted(f *testing.F) {
	f.Add([]byte{1, 3, 5}, []byte{2, 3, 9})
	f.Add([]byte{}, []byte{4})
	f.Fuzz(func(t *testing.T, x, y []byte) {
		a, b := durations(x), durations(y)
		want := slices.Sorted(slices.Values(append(slices.Clone(a), b...)))
		if got := mergeSorted(a, b); !slices.Equal(got, want) {
			t.Fatalf("mergeSorted(%v, %v) = %v, want %v", a, b, got, want)
		}
	})
}

// durations is b as sorted durations.
func durations(b []byte) []time.Duration {
	d := make([]time.Duration, len(b))
	for i, v := range b {
		d[i] = time.Duration(v)
	}
	slices.Sort(d)
	return d
}
