// Package standin is an in-process stand-in for the Anthropic Claude API.
//
// It speaks the real wire format of the Messages API (JSON and SSE
// streaming), count_tokens and the models list closely enough that the
// official Go SDK cannot tell it apart, records every request it receives so
// tests can assert what a caller forwarded, and injects faults on demand
// (slow first byte, connection resets, error statuses, malformed or truncated
// bodies, endless and huge streams) either through [Server.SetFault] or through
// a marker in the last user message (see [MarkerPrefix]).
//
// A Server is used either as an [http.Handler] or through [Server.Start],
// which listens on a real socket. It never calls out to the network.
package standin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used when the matching Options field is zero.
const (
	// DefaultMaxRecorded is how many requests are kept when Options.MaxRecorded is 0.
	DefaultMaxRecorded = 10000
	// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0
	// (the real API's limit for the Messages endpoint).
	DefaultMaxBodyBytes = 32 << 20
	// DefaultRequestsPerMinute is the advertised requests limit.
	DefaultRequestsPerMinute = 4000
	// DefaultTokensPerMinute is the advertised tokens limit.
	DefaultTokensPerMinute = 2000000
)

// Options configures a Server. The zero value is usable: no API key check,
// deltas of about three words, no delay between deltas, the last
// DefaultMaxRecorded requests recorded, any model name accepted.
type Options struct {
	// APIKey, when non-empty, is the only API key accepted, sent as x-api-key
	// or as "Authorization: Bearer KEY" (what anthropic-sdk-go v2's WithAPIKey
	// sends); other requests get 401 authentication_error. Empty accepts any
	// key, but a key must be sent.
	APIKey string
	// DeltaSize is the size in bytes of each streamed text_delta, cut back to a
	// UTF-8 boundary (a delta holds at least one whole character). Zero or
	// negative means about three words per delta.
	DeltaSize int
	// DeltaDelay is the pause between two streamed text deltas. Zero sends them
	// back to back.
	DeltaDelay time.Duration
	// MaxRecorded is how many of the most recent requests are kept for
	// [Server.Requests]. Zero means DefaultMaxRecorded; negative disables recording.
	MaxRecorded int
	// MaxBodyBytes is the largest request body accepted; larger bodies get 413
	// request_too_large. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RejectUnknownModels makes requests naming a model outside [Models] fail
	// with 404 not_found_error, as the real API does. The zero value accepts any
	// non-empty model name.
	RejectUnknownModels bool
	// RequestsPerMinute and TokensPerMinute are the limits advertised in the
	// anthropic-ratelimit-* headers (never enforced: use a fault for 429).
	// Zero means DefaultRequestsPerMinute and DefaultTokensPerMinute.
	RequestsPerMinute int
	TokensPerMinute   int
}

// Server is the stand-in API. Create it with [New]; it is safe for concurrent
// use. Its zero value is not usable.
type Server struct {
	opts Options
	// apiKeys are the accepted keys (see SetAPIKeys); empty accepts any.
	apiKeys atomic.Pointer[[]string]

	modelsList []modelEntry // newest first
	modelIndex map[string]int

	replyMu  sync.Mutex
	replies  []*preparedReply // consumed front to back, the last one sticks
	usage    *Usage
	faultMu  sync.Mutex
	fault    Fault
	faultSet atomic.Bool
	faultRem int // requests left for the current fault; 0 means forever

	recMu    sync.Mutex
	recorded []Recorded // ring buffer
	recHead  int        // index of the oldest entry once the ring is full
	recFull  bool

	requests    atomic.Int64
	inFlight    atomic.Int64
	openStreams atomic.Int64

	waitMu  sync.Mutex
	waiters []chan struct{}
	nWait   atomic.Int32

	rl rateWindow

	handlers sync.WaitGroup
	done     chan struct{}
	doneOnce sync.Once

	lifeMu   sync.Mutex
	listener net.Listener
	httpSrv  *http.Server
	serveErr chan error
}

// New returns a Server configured by opts. It does not listen; call
// [Server.Start] or mount it as an [http.Handler].
func New(opts Options) *Server {
	if opts.MaxRecorded == 0 {
		opts.MaxRecorded = DefaultMaxRecorded
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RequestsPerMinute <= 0 {
		opts.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if opts.TokensPerMinute <= 0 {
		opts.TokensPerMinute = DefaultTokensPerMinute
	}
	s := &Server{
		opts: opts,
		done: make(chan struct{}),
	}
	s.modelsList, s.modelIndex = buildModels()
	if opts.APIKey != "" {
		s.apiKeys.Store(&[]string{opts.APIKey})
	} else {
		s.apiKeys.Store(&[]string{})
	}
	return s
}

// SetAPIKeys replaces the accepted API keys, for testing a key rotation:
// during the switch a caller lists the old and the new key, then the new
// one alone. No keys accepts any key (a key must still be sent), as an
// empty Options.APIKey does. Requests already authorized are not affected.
func (s *Server) SetAPIKeys(keys ...string) {
	ks := make([]string, 0, len(keys))
	for _, k := range keys {
		if k != "" {
			ks = append(ks, k)
		}
	}
	s.apiKeys.Store(&ks)
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until [Server.Close]. It fails if the server was already started.
func (s *Server) Start(addr string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.listener != nil {
		return errors.New("starting stand-in: already started")
	}
	select {
	case <-s.done:
		return errors.New("starting stand-in: server is closed")
	default:
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("starting stand-in on %q: %w", addr, err)
	}
	s.listener = ln
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 1)
	s.serveErr = errc
	srv := s.httpSrv
	go func() { errc <- srv.Serve(ln) }()
	return nil
}

// URL is the base URL of the started server ("http://127.0.0.1:PORT"), or ""
// before [Server.Start].
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// Close stops the listener, closes every connection, ends sleeping and
// endless responses and waits for all handlers to return. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.doneOnce.Do(func() { close(s.done) })
	s.lifeMu.Lock()
	srv, errc := s.httpSrv, s.serveErr
	s.httpSrv, s.serveErr = nil, nil
	s.lifeMu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	s.handlers.Wait()
	if err != nil {
		return fmt.Errorf("closing stand-in: %w", err)
	}
	return nil
}

// Main runs a stand-in on addr until ctx ends, writing its URL to stdout. It
// is the body of the `moat standin` and `moat demo` subcommands.
func Main(ctx context.Context, addr string, stdout io.Writer) error {
	s := New(Options{})
	if err := s.Start(addr); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "claude stand-in listening on %s\n", s.URL()); err != nil {
		_ = s.Close()
		return fmt.Errorf("writing stand-in address: %w", err)
	}
	<-ctx.Done()
	return s.Close()
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	s.inFlight.Add(1)
	defer func() {
		s.inFlight.Add(-1)
		s.notifyWaiters()
		s.handlers.Done()
	}()
	s.requests.Add(1)

	body, tooLarge, readErr := readBody(r.Body, s.opts.MaxBodyBytes)
	s.record(r, body)
	reqID := newID("req_011C", 20)
	if readErr != nil {
		// The client went away or sent a broken body: nobody to answer.
		writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, "could not read the request body")
		return
	}
	if !s.authorized(w, r, reqID) {
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, "anthropic-version: header is required")
		return
	}
	if tooLarge {
		writeError(w, reqID, http.StatusRequestEntityTooLarge, errRequestTooLarge, "Request exceeds the maximum allowed number of bytes.")
		return
	}

	switch r.URL.Path {
	case "/v1/messages":
		if r.Method != http.MethodPost {
			writeMethodNotAllowed(w, reqID)
			return
		}
		s.handleMessages(w, r, body, reqID)
	case "/v1/messages/count_tokens":
		if r.Method != http.MethodPost {
			writeMethodNotAllowed(w, reqID)
			return
		}
		s.handleCountTokens(w, body, reqID)
	case "/v1/models":
		if r.Method != http.MethodGet {
			writeMethodNotAllowed(w, reqID)
			return
		}
		s.handleModelsList(w, r, reqID)
	default:
		if id, ok := cutPrefix(r.URL.Path, "/v1/models/"); ok && r.Method == http.MethodGet {
			s.handleModelGet(w, id, reqID)
			return
		}
		writeError(w, reqID, http.StatusNotFound, errNotFound, "Not Found")
	}
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func writeMethodNotAllowed(w http.ResponseWriter, reqID string) {
	writeError(w, reqID, http.StatusMethodNotAllowed, errInvalidRequest, "Method Not Allowed")
}

// authorized checks the API key and answers 401 when it is missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, reqID string) bool {
	key := requestKey(r.Header)
	if key == "" {
		writeError(w, reqID, http.StatusUnauthorized, errAuthentication, "x-api-key header is required")
		return false
	}
	keys := *s.apiKeys.Load()
	ok := len(keys) == 0
	for _, k := range keys {
		if subtle.ConstantTimeCompare([]byte(key), []byte(k)) == 1 {
			ok = true
		}
	}
	if !ok {
		writeError(w, reqID, http.StatusUnauthorized, errAuthentication, "invalid x-api-key")
		return false
	}
	return true
}

// requestKey is the API key a request carries: x-api-key, else the token of
// "Authorization: Bearer" (which anthropic-sdk-go v2 sends for WithAPIKey).
func requestKey(h http.Header) string {
	if k := h.Get("x-api-key"); k != "" {
		return k
	}
	auth := h.Get("Authorization")
	if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		return strings.TrimSpace(auth[len("Bearer "):])
	}
	return ""
}

// readBody reads at most limit bytes; tooLarge reports a longer body.
func readBody(rc io.Reader, limit int64) (body []byte, tooLarge bool, err error) {
	if rc == nil {
		return nil, false, nil
	}
	body, err = io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, nil
}

// Recorded is one request as the stand-in received it.
type Recorded struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path, RawQuery the query string without '?'.
	Path     string
	RawQuery string
	// RequestURI is the target exactly as sent on the request line
	// (escaping kept), to check what moat relays.
	RequestURI string
	// Header is a copy of the request headers.
	Header http.Header
	// Body is the raw request body (cut at Options.MaxBodyBytes).
	Body []byte
	// Time is when the request was received.
	Time time.Time
}

func (s *Server) record(r *http.Request, body []byte) {
	if s.opts.MaxRecorded < 0 {
		return
	}
	rec := Recorded{
		Method:     r.Method,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		RequestURI: r.RequestURI,
		Header:     r.Header.Clone(),
		Body:       body,
		Time:       time.Now(),
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if !s.recFull {
		s.recorded = append(s.recorded, rec)
		if len(s.recorded) == s.opts.MaxRecorded {
			s.recFull = true
			s.recHead = 0
		}
		return
	}
	s.recorded[s.recHead] = rec
	s.recHead = (s.recHead + 1) % len(s.recorded)
}

// APIKey is the API key the request carried, from x-api-key or else from
// "Authorization: Bearer", or "" when it carried none.
func (r Recorded) APIKey() string { return requestKey(r.Header) }

// Requests returns the recorded requests, oldest first.
func (s *Server) Requests() []Recorded {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	out := make([]Recorded, 0, len(s.recorded))
	if s.recFull {
		out = append(out, s.recorded[s.recHead:]...)
		out = append(out, s.recorded[:s.recHead]...)
		return out
	}
	return append(out, s.recorded...)
}

// Last returns the most recent recorded request, or the zero Recorded when
// none was recorded.
func (s *Server) Last() Recorded {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if len(s.recorded) == 0 {
		return Recorded{}
	}
	if s.recFull {
		return s.recorded[(s.recHead+len(s.recorded)-1)%len(s.recorded)]
	}
	return s.recorded[len(s.recorded)-1]
}

// Reset forgets the recorded requests and zeroes the request counter. It
// leaves replies, usage overrides and faults alone.
func (s *Server) Reset() {
	s.recMu.Lock()
	s.recorded, s.recHead, s.recFull = nil, 0, false
	s.recMu.Unlock()
	s.requests.Store(0)
}

// RequestCount is the number of requests received since New or the last Reset.
func (s *Server) RequestCount() int64 { return s.requests.Load() }

// InFlight is the number of requests being handled right now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// OpenStreams is the number of SSE responses being written right now.
func (s *Server) OpenStreams() int { return int(s.openStreams.Load()) }

// WaitStreamsClosed blocks until no SSE response is open, or ctx ends.
func (s *Server) WaitStreamsClosed(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return s.openStreams.Load() == 0 })
}

// WaitIdle blocks until no request is being handled, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return s.inFlight.Load() == 0 })
}

func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		ch := make(chan struct{})
		s.waitMu.Lock()
		s.waiters = append(s.waiters, ch)
		s.nWait.Add(1)
		s.waitMu.Unlock()
		if cond() {
			s.notifyAll()
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.notifyAll()
			return fmt.Errorf("waiting for the stand-in: %w", ctx.Err())
		}
	}
}

// notifyWaiters wakes waiters after a counter went down; cheap when nobody waits.
func (s *Server) notifyWaiters() {
	if s.nWait.Load() == 0 {
		return
	}
	s.notifyAll()
}

func (s *Server) notifyAll() {
	s.waitMu.Lock()
	for _, ch := range s.waiters {
		close(ch)
	}
	s.nWait.Add(-int32(len(s.waiters)))
	s.waiters = nil
	s.waitMu.Unlock()
}

// sleep waits d, returning false early when ctx ends or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}
