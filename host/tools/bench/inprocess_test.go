package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// startInProcess runs the stand-in and moat (with the benchmark's own
// config for key) in this process, for a profile of the request path with
// pprof and -benchmem (go test -bench MoatInProcess -cpuprofile ... ).
func startInProcess(tb testing.TB, key string) *target {
	tb.Helper()
	work := tb.TempDir()
	o := Options{Root: work, Self: []string{"unused"}, Work: work}
	opts, err := o.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{opts: &opts, work: work}
	if err := e.prepare(context.Background()); err != nil {
		tb.Fatal(err)
	}
	si := standin.New(standin.Options{APIKey: e.upKey, MaxRecorded: -1})
	si.SetReply(ReplyText)
	if err := si.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = si.Close() })
	e.standinURL = si.URL()
	cfg, err := e.moatConfig(key)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{ConfigPath: cfg, Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Ready: func(p, _ string) { ready <- p }})
	}()
	select {
	case addr := <-ready:
		tb.Cleanup(func() {
			cancel()
			<-done
		})
		h := messagesHeader(e.clientKey)
		return &target{key: key, url: "http://" + addr, header: h}
	case err := <-done:
		cancel()
		tb.Fatalf("moat did not start: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		tb.Fatal("moat did not start in 2 minutes")
	}
	return nil
}

// processCPU is this process's user+system CPU time.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMoatInProcess sends the benchmark's request to moat without
// plugins and with the default chain, non-streaming and streaming, one at
// a time; the client and the stand-in share the process, so read its
// profile for moat's own functions. It reports the
// process CPU per request (cpu-ns/op: client, stand-in and moat together;
// compare two builds by running their test binaries in turn).
func BenchmarkMoatInProcess(b *testing.B) {
	if _, err := os.Stat(filepath.Join("..", "..", "internal", "builtin", "wasm")); err != nil {
		b.Skip("built-in modules missing")
	}
	for _, key := range []string{KeyMoatNone, KeyMoatDefault} {
		t := startInProcess(b, key)
		for _, stream := range []bool{false, true} {
			name := key + map[bool]string{false: "/json", true: "/stream"}[stream]
			spec := &LoadSpec{URL: t.url + "/v1/messages", Header: t.header, Body: RequestBody(stream), Stream: stream}
			client := NewClient(1)
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := processCPU(b)
				for b.Loop() {
					if s := doRequest(context.Background(), client, spec); s.err != nil {
						b.Fatal(s.err)
					}
				}
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
			client.CloseIdleConnections()
		}
	}
}
