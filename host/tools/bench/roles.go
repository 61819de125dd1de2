package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// Roles a benchmark child process can play (see RunRole).
const (
	// RoleStandin serves the Claude API stand-in with the benchmark's reply.
	RoleStandin = "standin"
	// RoleBareProxy is the floor: a plain httputil.ReverseProxy that only
	// swaps in the upstream key.
	RoleBareProxy = "bare-proxy"
	// RoleBurner spins a CPU for --burn every --every: the control of the
	// looping-plugin experiment (the same CPU stolen from outside moat).
	RoleBurner = "burner"
)

// readyPrefix starts the line a role prints once it listens.
const readyPrefix = "bench role listening on "

// RunRole plays role until ctx ends: it listens on 127.0.0.1 (the port from
// --listen, default a free one), prints "bench role listening on URL" to
// stdout and serves. args are the role's flags:
//
//	standin:    --listen ADDR --key-file FILE [--delta-delay DURATION]
//	bare-proxy: --listen ADDR --key-file FILE --upstream URL
//	burner:     --burn DURATION --every DURATION [--workers N] (prints "bench role listening on burner")
func RunRole(ctx context.Context, role string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	keyFile := fs.String("key-file", "", "file holding the upstream key")
	upstream := fs.String("upstream", "", "upstream base URL (bare-proxy)")
	burn := fs.Duration("burn", 100*time.Millisecond, "CPU time per burst (burner)")
	every := fs.Duration("every", 500*time.Millisecond, "time between bursts (burner)")
	workers := fs.Int("workers", 1, "goroutines each burning --burn every --every (burner)")
	deltaDelay := fs.Duration("delta-delay", 0, "pause between streamed text deltas (standin)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("role %s: %w", role, err)
	}
	if role == RoleBurner {
		if *burn <= 0 || *every <= 0 || *workers < 1 || *workers > 256 {
			return errors.New("role burner: --burn and --every must be positive, --workers 1 to 256")
		}
		if _, err := fmt.Fprintln(stdout, readyPrefix+"http://burner"); err != nil {
			return fmt.Errorf("role burner: %w", err)
		}
		done := make(chan struct{})
		for range *workers {
			go func() {
				defer func() { done <- struct{}{} }()
				burnLoop(ctx, *burn, *every)
			}()
		}
		for range *workers {
			<-done
		}
		return nil
	}
	if *keyFile == "" {
		return fmt.Errorf("role %s: --key-file is required", role)
	}
	kb, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("role %s: reading key: %w", role, err)
	}
	key := strings.TrimSpace(string(kb))
	if key == "" {
		return fmt.Errorf("role %s: key file %s is empty", role, *keyFile)
	}
	switch role {
	case RoleStandin:
		if *deltaDelay < 0 {
			return errors.New("role standin: --delta-delay must not be negative")
		}
		si := standin.New(standin.Options{APIKey: key, MaxRecorded: -1, DeltaDelay: *deltaDelay})
		si.SetReply(ReplyText)
		if err := si.Start(*listen); err != nil {
			return fmt.Errorf("role standin: %w", err)
		}
		if _, err := fmt.Fprintln(stdout, readyPrefix+si.URL()); err != nil {
			_ = si.Close()
			return fmt.Errorf("role standin: %w", err)
		}
		<-ctx.Done()
		return si.Close()
	case RoleBareProxy:
		if *upstream == "" {
			return errors.New("role bare-proxy: --upstream is required")
		}
		target, err := url.Parse(*upstream)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") {
			return fmt.Errorf("role bare-proxy: bad --upstream %q", *upstream)
		}
		return serveBareProxy(ctx, *listen, target, key, stdout)
	}
	return fmt.Errorf("unknown role %q (want %s, %s or %s)", role, RoleStandin, RoleBareProxy, RoleBurner)
}

// burnSink keeps the burner's loop from being optimised away.
var burnSink uint64

// burnLoop spins one goroutine for burn, every interval, until ctx ends.
func burnLoop(ctx context.Context, burn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		end := time.Now().Add(burn)
		for time.Now().Before(end) {
			for i := 0; i < 1000; i++ {
				burnSink = burnSink*31 + uint64(i)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NewBareProxy returns the floor the benchmark compares moat with: a
// reverse proxy to target that replaces the caller's credentials by key,
// streams without buffering (FlushInterval -1) and keeps up to 256 idle
// upstream connections, like moat.
func NewBareProxy(target *url.URL, key string) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set("X-Api-Key", key)
		},
		FlushInterval: -1,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Full duplex, so that a response may start before the request
		// body is read to its end, as a streaming gateway would.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
}

func serveBareProxy(ctx context.Context, listen string, target *url.URL, key string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("role bare-proxy: %w", err)
	}
	srv := &http.Server{
		Handler:           NewBareProxy(target, key),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if _, err := fmt.Fprintln(stdout, readyPrefix+"http://"+ln.Addr().String()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("role bare-proxy: %w", err)
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("role bare-proxy: serving: %w", err)
	}
}
