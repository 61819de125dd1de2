package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// upstreamResponse is a finished or open upstream response.
type upstreamResponse struct {
	*http.Response
	cancel context.CancelFunc
}

// callUpstream sends the body: a streamed call lives as long as the
// client, a whole one at most upstream.timeout.
func (c *Call) callUpstream(method, path string, body []byte) (*upstreamResponse, error) {
	ctx := c.ctx
	var cancel context.CancelFunc
	if c.Stream {
		ctx, cancel = context.WithCancel(ctx)
	} else if c.pol.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.pol.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	t0 := time.Now()
	resp, err := c.up.Send(ctx, method, path, body)
	c.upstreamTime += time.Since(t0)
	if err != nil {
		cancel()
		return nil, err
	}
	if vs := resp.Header["Request-Id"]; len(vs) > 0 {
		c.upstreamID = vs[0]
	}
	return &upstreamResponse{Response: resp, cancel: cancel}, nil
}

// maxResponseBytes is Options.MaxResponseBytes, or when it is zero the
// most a body can be.
func (c *Call) maxResponseBytes() int64 {
	if c.pol.MaxResponseBytes > 0 {
		return c.pol.MaxResponseBytes
	}
	return math.MaxInt64 - 1
}

// readUpstream reads a non-streaming body within the configured cap.
func (c *Call) readUpstream(resp *upstreamResponse) ([]byte, error) {
	defer resp.cancel()
	defer resp.Body.Close()
	max := c.maxResponseBytes()
	t0 := time.Now()
	b, err := ReadAll(io.LimitReader(resp.Body, max+1), resp.ContentLength, max+1)
	c.upstreamTime += time.Since(t0)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fault.New(fault.UpstreamTimeout, "upstream timed out")
		}
		if c.ctx.Err() != nil {
			// The client left: the upstream read was cancelled with it.
			return nil, fault.New(fault.ClientGone, "client disconnected")
		}
		return nil, fault.New(fault.UpstreamFailed, "reading upstream response: connection failed")
	}
	if int64(len(b)) > max {
		return nil, fault.New(fault.UpstreamFailed, "upstream response exceeds the %d-byte limit", max)
	}
	return b, nil
}

// post sends body to path and returns the body of a 200.
func (c *Call) post(path string, body []byte) ([]byte, error) {
	resp, err := c.callUpstream(http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	return c.answer(resp)
}

// Get sends a GET of pathQuery (at most upstream.timeout) and returns the
// body of a 200.
func (c *Call) Get(pathQuery string) ([]byte, error) {
	resp, err := c.callUpstream(http.MethodGet, pathQuery, nil)
	if err != nil {
		return nil, err
	}
	return c.answer(resp)
}

// answer reads a whole upstream answer; one that is not a 200 is the
// client's error (UpstreamFailure).
func (c *Call) answer(resp *upstreamResponse) ([]byte, error) {
	b, err := c.readUpstream(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, UpstreamFailure(resp.StatusCode, b)
	}
	return b, nil
}

// UpstreamFailure turns a non-2xx upstream answer into the client's error.
// An error in Anthropic's shape passes through with its status, except 401
// and 403, which reject moat's key, not the caller's: the caller gets a 502
// api_error that says so (an SDK would otherwise report the caller's own
// key as bad). Any other body (a proxy's HTML, a plain-text 404 from a
// wrong base_url) is a 502 that names the upstream's real status.
func UpstreamFailure(status int, body []byte) *fault.Error {
	d, ok := anthropic.ParseErrorBody(body)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		detail := ""
		if ok {
			detail = ": " + d.Type + ": " + d.Message
		}
		e := fault.New(fault.UpstreamFailed,
			"the gateway's upstream credentials were rejected (upstream status %d%s); this is a gateway configuration problem, not your key: tell the gateway's operator", status, detail)
		e.Quoted = detail != "" // it quotes the upstream: judged and scrubbed
		return e
	}
	if ok {
		// Judged and scrubbed before the client sees it.
		e := &fault.Error{Kind: fault.UpstreamError, Status: status, Type: d.Type, Msg: d.Message, Quoted: true}
		switch {
		case status == 529:
			e.Kind = fault.UpstreamOverloaded
		case status < 500 && status != http.StatusTooManyRequests:
			e.Kind = fault.UpstreamRefused
		}
		return e
	}
	st := status
	if st < 500 {
		st = http.StatusBadGateway
	}
	return &fault.Error{Kind: fault.UpstreamError, Status: st, Msg: fmt.Sprintf("upstream returned status %d with a body that is not an API error", status)}
}

// ReadAll is io.ReadAll starting from a buffer of the announced size
// (Content-Length; -1 when unknown) plus one byte, so that a body of the
// announced size is read without growing the buffer. hint is trusted only
// up to limit, the most the caller will accept.
func ReadAll(r io.Reader, hint, limit int64) ([]byte, error) {
	if hint <= 0 || hint > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, hint+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			// More than announced: let append pick the next size.
			b = append(b, 0)[:len(b)]
		}
	}
}
