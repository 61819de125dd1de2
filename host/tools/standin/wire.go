package standin

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
)

// Error types of the Anthropic API, as sent in error.type (declared once,
// with moat's wire format).
const (
	errInvalidRequest  = anthropic.TypeInvalidRequest
	errAuthentication  = anthropic.TypeAuthentication
	errBilling         = anthropic.TypeBilling
	errPermission      = anthropic.TypePermission
	errNotFound        = anthropic.TypeNotFound
	errRequestTooLarge = anthropic.TypeRequestTooLarge
	errRateLimit       = anthropic.TypeRateLimit
	errAPI             = anthropic.TypeAPI
	errTimeout         = anthropic.TypeTimeout
	errOverloaded      = anthropic.TypeOverloaded
)

// StatusOverloaded is the non-standard status the API uses for overloaded_error.
const StatusOverloaded = 529

// ErrorTypeForStatus is the error.type the real API sends with an HTTP status.
func ErrorTypeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return errInvalidRequest
	case http.StatusUnauthorized:
		return errAuthentication
	case http.StatusPaymentRequired:
		return errBilling
	case http.StatusForbidden:
		return errPermission
	case http.StatusNotFound:
		return errNotFound
	case http.StatusRequestEntityTooLarge:
		return errRequestTooLarge
	case http.StatusTooManyRequests:
		return errRateLimit
	case http.StatusGatewayTimeout:
		return errTimeout
	case StatusOverloaded:
		return errOverloaded
	default:
		if status >= 400 && status < 500 {
			return errInvalidRequest
		}
		return errAPI
	}
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type errorBody struct {
	Type      string      `json:"type"`
	Error     errorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// writeError answers with Anthropic's error shape and a request-id header.
func writeError(w http.ResponseWriter, reqID string, status int, typ, msg string) {
	writeErrorRetry(w, reqID, status, typ, msg, "")
}

func writeErrorRetry(w http.ResponseWriter, reqID string, status int, typ, msg, retryAfter string) {
	body := marshal(errorBody{Type: "error", Error: errorDetail{Type: typ, Message: msg}, RequestID: reqID})
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Request-Id"] = []string{reqID}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if retryAfter != "" {
		h["Retry-After"] = []string{retryAfter}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var (
	jsonContentType = []string{"application/json"}
	sseContentType  = []string{"text/event-stream; charset=utf-8"}
	noCache         = []string{"no-cache"}
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// marshal encodes v as JSON without HTML escaping (as the API does) and
// without a trailing newline. Values passed here never fail to encode.
func marshal(v any) []byte {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own plain structs reach this function.
		panic("standin: encoding response: " + err.Error())
	}
	out := bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if buf.Cap() <= 1<<20 {
		bufPool.Put(buf)
	}
	return out
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns prefix followed by n random base62 characters, the shape of
// the API's msg_…, req_… and toolu_… identifiers.
func newID(prefix string, n int) string {
	b := make([]byte, len(prefix)+n)
	copy(b, prefix)
	var r uint64
	for i := len(prefix); i < len(b); i++ {
		if r < 62 {
			r = rand.Uint64()
		}
		b[i] = base62[r%62]
		r /= 62
	}
	return string(b)
}

// rateWindow tracks the per-minute figures advertised in the
// anthropic-ratelimit-* headers.
type rateWindow struct {
	mu       sync.Mutex
	minute   int64
	reset    string
	requests int
	tokens   int
}

// take counts one request using tokens and returns the headers' figures.
func (rw *rateWindow) take(now time.Time, tokens int) (requests, used int, reset string) {
	minute := now.Unix() / 60
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if minute != rw.minute {
		rw.minute = minute
		rw.requests, rw.tokens = 0, 0
		rw.reset = time.Unix((minute+1)*60, 0).UTC().Format(time.RFC3339)
	}
	rw.requests++
	rw.tokens += tokens
	return rw.requests, rw.tokens, rw.reset
}

// setSuccessHeaders writes request-id and the rate-limit headers.
func (s *Server) setSuccessHeaders(h http.Header, reqID string, inputTokens, outputTokens int) {
	reqs, used, reset := s.rl.take(time.Now(), inputTokens+outputTokens)
	rlim, tlim := s.opts.RequestsPerMinute, s.opts.TokensPerMinute
	h["Request-Id"] = []string{reqID}
	h["Anthropic-Ratelimit-Requests-Limit"] = []string{strconv.Itoa(rlim)}
	h["Anthropic-Ratelimit-Requests-Remaining"] = []string{strconv.Itoa(max(0, rlim-reqs))}
	h["Anthropic-Ratelimit-Requests-Reset"] = []string{reset}
	h["Anthropic-Ratelimit-Tokens-Limit"] = []string{strconv.Itoa(tlim)}
	h["Anthropic-Ratelimit-Tokens-Remaining"] = []string{strconv.Itoa(max(0, tlim-used))}
	h["Anthropic-Ratelimit-Tokens-Reset"] = []string{reset}
	h["Anthropic-Ratelimit-Input-Tokens-Limit"] = []string{strconv.Itoa(tlim)}
	h["Anthropic-Ratelimit-Input-Tokens-Remaining"] = []string{strconv.Itoa(max(0, tlim-used))}
	h["Anthropic-Ratelimit-Input-Tokens-Reset"] = []string{reset}
	h["Anthropic-Ratelimit-Output-Tokens-Limit"] = []string{strconv.Itoa(tlim)}
	h["Anthropic-Ratelimit-Output-Tokens-Remaining"] = []string{strconv.Itoa(max(0, tlim-used))}
	h["Anthropic-Ratelimit-Output-Tokens-Reset"] = []string{reset}
}
