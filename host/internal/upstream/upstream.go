// Package upstream is moat's HTTP client to the Anthropic API: pooled
// keep-alive connections, the server-held key set on every call, and bounded
// retries of failures that are safe to retry.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// Options configure a Client: [upstream] and [retry] of config.toml,
// compiled by host/internal/plan (which holds the defaults).
type Options struct {
	// BaseURL is the API's root, such as https://api.anthropic.com.
	BaseURL string
	// ConnectTimeout bounds dialing; zero leaves it to the OS.
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait for response headers; zero waits
	// as long as the request's context.
	FirstByteTimeout time.Duration
	// MaxIdleConns is the keep-alive pool size; zero keeps net/http's
	// defaults (no total cap, two per host).
	MaxIdleConns int
	// Retry bounds retries; the zero value tries once.
	Retry Retry
}

// Retry configures retries of failures that are safe to retry.
type Retry struct {
	// Attempts is the total number of tries; 0 and 1 mean no retry.
	Attempts int
	// Backoff is the first wait; it doubles each try, up to MaxBackoff
	// (which also bounds a retry-after the upstream asks for).
	Backoff, MaxBackoff time.Duration
}

// Client calls the upstream API. It is safe for concurrent use.
type Client struct {
	base  string
	hc    *http.Client
	key   func() string
	retry Retry
	// sleep waits between retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client for cfg. key is called for every request, so a
// rotated key is used at once.
func New(cfg Options, key func() string) *Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   cfg.ConnectTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.FirstByteTimeout,
		ExpectContinueTimeout: time.Second,
		// The upstream's compression reaches moat, not the client: moat
		// reads bodies to validate them.
		DisableCompression: false,
	}
	return &Client{
		base:  strings.TrimRight(cfg.BaseURL, "/"),
		hc:    &http.Client{Transport: tr},
		key:   key,
		retry: cfg.Retry,
		sleep: sleepCtx,
	}
}

// CloseIdle closes idle pooled connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Attempt records one try, for the audit trail.
type Attempt struct {
	Status int
	Err    string
}

// Do sends a request to path with body and the given headers, adding the
// upstream key. Connection refusals, 529 and 429 with a retry-after within
// the configured bound are retried with backoff. Transport failures come
// back as a *fault.Error (fault.UpstreamTimeout, fault.ClientGone or
// fault.UpstreamFailed); the response is
// the caller's to close.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, hdr http.Header) (*http.Response, []Attempt, error) {
	var attempts []Attempt
	backoff := c.retry.Backoff
	for try := 1; ; try++ {
		resp, err := c.once(ctx, method, path, body, hdr)
		last := try >= c.retry.Attempts
		if err != nil {
			attempts = append(attempts, Attempt{Err: err.Error()})
			if last || !retryableErr(err) || ctx.Err() != nil {
				return nil, attempts, transportError(ctx, err)
			}
		} else {
			attempts = append(attempts, Attempt{Status: resp.StatusCode})
			wait, ok := c.retryableResp(resp)
			if last || !ok {
				return resp, attempts, nil
			}
			if wait > backoff {
				backoff = wait
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if backoff > c.retry.MaxBackoff {
			backoff = c.retry.MaxBackoff
		}
		if err := c.sleep(ctx, backoff); err != nil {
			return nil, attempts, transportError(ctx, err)
		}
		backoff *= 2
	}
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	// Canonical keys, set directly: Set and Get would canonicalize
	// "x-api-key" and "content-type" on every request.
	delete(req.Header, "Authorization")
	req.Header["X-Api-Key"] = []string{c.key()}
	if ct := req.Header["Content-Type"]; len(body) > 0 && (len(ct) == 0 || ct[0] == "") {
		req.Header["Content-Type"] = jsonContentType
	}
	return c.hc.Do(req)
}

// retryableResp reports whether a response may be retried and how long the
// upstream asked to wait.
func (c *Client) retryableResp(resp *http.Response) (time.Duration, bool) {
	switch resp.StatusCode {
	case 529:
		return retryAfter(resp.Header), true
	case http.StatusTooManyRequests:
		d := retryAfter(resp.Header)
		if d <= 0 || d > c.retry.MaxBackoff {
			return 0, false
		}
		return d, true
	}
	return 0, false
}

// jsonContentType is the Content-Type of a request body sent without one;
// it is only read.
var jsonContentType = []string{"application/json"}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("retry-after")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func retryableErr(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// transportError classifies a failed round trip. The message says what
// happened without addresses or URLs.
func transportError(ctx context.Context, err error) *fault.Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fault.New(fault.UpstreamTimeout, "upstream timed out")
	}
	if errors.Is(err, context.Canceled) {
		return fault.New(fault.ClientGone, "request cancelled by the client")
	}
	return fault.New(fault.UpstreamFailed, "upstream unreachable: %s", scrubErr(err))
}

// scrubErr keeps the gist of a transport error without URLs or addresses
// that could carry more than needed.
func scrubErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "name resolution failed"
	}
	return "connection failed"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
