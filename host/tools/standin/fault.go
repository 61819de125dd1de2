package standin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a fault the stand-in can inject into Messages responses.
// Its string is also the word used after [MarkerPrefix].
type FaultKind string

// Fault kinds. Each says what a streaming request sees; non-streaming
// requests see the closest equivalent, noted in brackets.
const (
	// FaultNone injects nothing.
	FaultNone FaultKind = ""
	// FaultSlowFirstByte waits Fault.Delay before sending the headers, then
	// answers normally. [same]
	FaultSlowFirstByte FaultKind = "slow"
	// FaultReset sends Fault.AfterEvents events, then resets the TCP
	// connection (RST). [reset before any byte of the response]
	FaultReset FaultKind = "reset"
	// FaultError answers Fault.Status (default 500) with the matching error
	// type. [same]
	FaultError FaultKind = "error"
	// FaultServerError answers 500 api_error. [same]
	FaultServerError FaultKind = "api_error"
	// FaultOverloaded answers 529 overloaded_error. [same]
	FaultOverloaded FaultKind = "overloaded"
	// FaultRateLimit answers 429 rate_limit_error with a retry-after header
	// (Fault.RetryAfter, default "1"). [same]
	FaultRateLimit FaultKind = "rate_limit"
	// FaultMalformedJSON sends an event whose data is broken JSON after
	// Fault.AfterEvents events. [200 application/json with a body cut inside
	// the JSON, complete as far as HTTP goes]
	FaultMalformedJSON FaultKind = "bad_json"
	// FaultMalformedSSE sends garbage lines and an event that is not JSON
	// after Fault.AfterEvents events. [as FaultMalformedJSON]
	FaultMalformedSSE FaultKind = "bad_sse"
	// FaultTruncatedSSE sends Fault.AfterEvents events and ends the response
	// cleanly, without message_stop. [a Content-Length promising the whole
	// body, half of it, then the connection closes]
	FaultTruncatedSSE FaultKind = "truncated"
	// FaultStreamError sends Fault.AfterEvents events, then an SSE error event
	// (overloaded_error), as the API does when it fails mid-stream. [as FaultOverloaded]
	FaultStreamError FaultKind = "stream_error"
	// FaultEndless streams text deltas every Fault.Delay (default 10ms) until
	// the client goes away or the server closes. [a JSON body whose text never ends]
	FaultEndless FaultKind = "endless"
	// FaultHuge answers a text of Fault.Size bytes (default 4 MiB). [same]
	FaultHuge FaultKind = "huge"
)

// Fault defaults, used when the matching Fault field is zero.
const (
	DefaultSlowDelay       = 2 * time.Second
	DefaultEndlessInterval = 10 * time.Millisecond
	DefaultHugeBytes       = 4 << 20
	// DefaultAfterEvents is message_start, content_block_start, ping and one delta.
	DefaultAfterEvents = 4
	DefaultRetryAfter  = "1"
)

// MarkerPrefix, followed by a fault kind, in the last user message injects
// that fault into this one request: "MOAT_FAULT:reset". An optional argument
// follows '=': a duration for slow and endless ("slow=500ms"), a byte count for
// huge ("huge=1048576"), an event count for reset, truncated, bad_json,
// bad_sse and stream_error ("reset=6"), seconds of retry-after for rate_limit,
// an HTTP status for error ("error=503"). A marker takes precedence over
// [Server.SetFault] and does not use it up. An unknown kind or a bad argument
// is answered 400 invalid_request_error.
const MarkerPrefix = "MOAT_FAULT:"

// Fault describes a fault to inject. The zero value injects nothing.
type Fault struct {
	// Kind is the fault.
	Kind FaultKind
	// Count is how many Messages requests get the fault; 0 means every
	// request until [Server.ClearFault].
	Count int
	// Status is the HTTP status for FaultError (default 500).
	Status int
	// Message is the error message for error kinds; empty uses the API's wording.
	Message string
	// RetryAfter is the retry-after header for FaultRateLimit (default "1"),
	// and is also sent with the other error kinds when set.
	RetryAfter string
	// Delay is the wait before headers for FaultSlowFirstByte (default
	// DefaultSlowDelay) and between deltas for FaultEndless (default
	// DefaultEndlessInterval).
	Delay time.Duration
	// AfterEvents is how many SSE events are sent before the fault strikes for
	// FaultReset, FaultTruncatedSSE, FaultMalformedJSON, FaultMalformedSSE and
	// FaultStreamError (default DefaultAfterEvents).
	AfterEvents int
	// Size is the reply size in bytes for FaultHuge (default DefaultHugeBytes).
	Size int
}

func (k FaultKind) known() bool {
	switch k {
	case FaultNone, FaultSlowFirstByte, FaultReset, FaultError, FaultServerError,
		FaultOverloaded, FaultRateLimit, FaultMalformedJSON, FaultMalformedSSE,
		FaultTruncatedSSE, FaultStreamError, FaultEndless, FaultHuge:
		return true
	}
	return false
}

func (f Fault) validate() error {
	if !f.Kind.known() {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Count < 0 || f.AfterEvents < 0 || f.Size < 0 || f.Delay < 0 {
		return fmt.Errorf("fault %q: negative count, after-events, size or delay", f.Kind)
	}
	if f.Kind == FaultError && f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("fault %q: status %d is not an error status", f.Kind, f.Status)
	}
	return nil
}

// withDefaults fills the zero fields that matter for f.Kind.
func (f Fault) withDefaults() Fault {
	switch f.Kind {
	case FaultSlowFirstByte:
		if f.Delay == 0 {
			f.Delay = DefaultSlowDelay
		}
	case FaultEndless:
		if f.Delay == 0 {
			f.Delay = DefaultEndlessInterval
		}
	case FaultHuge:
		if f.Size == 0 {
			f.Size = DefaultHugeBytes
		}
	case FaultRateLimit:
		if f.RetryAfter == "" {
			f.RetryAfter = DefaultRetryAfter
		}
	case FaultError:
		if f.Status == 0 {
			f.Status = http.StatusInternalServerError
		}
	}
	if f.AfterEvents == 0 {
		f.AfterEvents = DefaultAfterEvents
	}
	return f
}

// SetFault injects f into the following Messages requests (f.Count of them,
// or all until ClearFault when Count is 0). It replaces any earlier fault;
// FaultNone clears it. count_tokens and models requests are never faulted.
func (s *Server) SetFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("setting fault: %w", err)
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.fault = f.withDefaults()
	s.faultRem = f.Count
	s.faultSet.Store(f.Kind != FaultNone)
	return nil
}

// ClearFault stops injecting the fault set by SetFault.
func (s *Server) ClearFault() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.fault = Fault{}
	s.faultRem = 0
	s.faultSet.Store(false)
}

// takeFault returns the fault for a request whose last user text is
// lastUser: its marker, else the fault set by SetFault (using it up).
func (s *Server) takeFault(lastUser string) (Fault, error) {
	if strings.Contains(lastUser, MarkerPrefix) {
		f, err := ParseMarker(lastUser)
		if err != nil {
			return Fault{}, err
		}
		if f.Kind != FaultNone {
			return f.withDefaults(), nil
		}
	}
	if !s.faultSet.Load() {
		return Fault{}, nil
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.fault
	if f.Kind == FaultNone {
		return Fault{}, nil
	}
	if s.faultRem > 0 {
		s.faultRem--
		if s.faultRem == 0 {
			s.fault = Fault{}
			s.faultSet.Store(false)
		}
	}
	return f, nil
}

// ParseMarker finds the first [MarkerPrefix] in text and returns the fault it
// names, with Count 1. Text without a marker gives the zero Fault.
func ParseMarker(text string) (Fault, error) {
	i := strings.Index(text, MarkerPrefix)
	if i < 0 {
		return Fault{}, nil
	}
	rest := text[i+len(MarkerPrefix):]
	n := 0
	for n < len(rest) && isKindByte(rest[n]) {
		n++
	}
	kind := FaultKind(rest[:n])
	rest = rest[n:]
	if kind == FaultNone || !kind.known() {
		return Fault{}, fmt.Errorf("%s: unknown fault kind %q", MarkerPrefix, kind)
	}
	f := Fault{Kind: kind, Count: 1}
	if len(rest) == 0 || rest[0] != '=' {
		return f, nil
	}
	rest = rest[1:]
	n = 0
	for n < len(rest) && isArgByte(rest[n]) {
		n++
	}
	arg := strings.TrimRight(rest[:n], ".") // a marker may end a sentence
	if arg == "" {
		return Fault{}, fmt.Errorf("%s%s: empty argument after '='", MarkerPrefix, kind)
	}
	bad := func(want string) (Fault, error) {
		return Fault{}, fmt.Errorf("%s%s: argument %q is not %s", MarkerPrefix, kind, arg, want)
	}
	switch kind {
	case FaultSlowFirstByte, FaultEndless:
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 || d > time.Hour {
			return bad("a duration between 0 and 1h")
		}
		f.Delay = d
	case FaultHuge:
		v, err := strconv.Atoi(arg)
		if err != nil || v < 1 || v > 1<<30 {
			return bad("a byte count between 1 and 1GiB")
		}
		f.Size = v
	case FaultReset, FaultTruncatedSSE, FaultMalformedJSON, FaultMalformedSSE, FaultStreamError:
		v, err := strconv.Atoi(arg)
		if err != nil || v < 1 || v > 1<<20 {
			return bad("an event count of at least 1")
		}
		f.AfterEvents = v
	case FaultRateLimit:
		v, err := strconv.Atoi(arg)
		if err != nil || v < 0 {
			return bad("a number of seconds")
		}
		f.RetryAfter = strconv.Itoa(v)
	case FaultError:
		v, err := strconv.Atoi(arg)
		if err != nil || v < 400 || v > 599 {
			return bad("an HTTP error status")
		}
		f.Status = v
	default:
		return Fault{}, fmt.Errorf("%s%s: takes no argument", MarkerPrefix, kind)
	}
	return f, nil
}

func isKindByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c == '_'
}

func isArgByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-'
}
