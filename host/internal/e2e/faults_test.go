package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// faultUpstream is the [upstream] of the fault tests: short timeouts and
// caps so every fault ends in well under two seconds.
const faultUpstream = `first_byte_timeout = "400ms"
stream_idle_timeout = "1s"
max_stream_duration = "1500ms"
max_response_bytes = 65536`

// faultExtra retries quickly and puts every call under a small budget, so
// the tests can check that reservations are released and spend settled.
const faultExtra = `
[retry]
attempts = 3
backoff = "20ms"
max_backoff = "500ms"

[[budgets]]
scope = "global"
period = "day"
usd = 50.0

[pricing."claude-sonnet-5-5"]
input = 3.0
output = 15.0
`

// faultBody is a Messages request body.
func faultBody(text string, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": 256,
		"stream":     stream,
		"messages":   []map[string]any{{"role": "user", "content": text}},
	})
	return b
}

// faultAudit is the part of an audit line the fault tests check.
type faultAudit struct {
	RequestID string  `json:"request_id"`
	Status    int     `json:"status"`
	Decision  string  `json:"decision"`
	DecidedBy string  `json:"decided_by"`
	Stream    bool    `json:"stream"`
	CostUSD   float64 `json:"cost_usd"`
	Error     string  `json:"error"`
	Output    int64   `json:"output_tokens"`
}

// faultAudits parses the audit file; every line must be a valid record.
func faultAudits(t *testing.T, e *env) []faultAudit {
	t.Helper()
	var out []faultAudit
	for i, l := range e.auditLines() {
		var a faultAudit
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.RequestID == "" || a.Decision == "" {
			t.Fatalf("audit line %d is not a valid record (%v): %s", i+1, err, l)
		}
		out = append(out, a)
	}
	return out
}

// faultBudget is the global budget as GET /admin/usage reports it.
type faultBudget struct {
	Spent, Reserved float64
}

func faultUsage(t *testing.T, e *env) faultBudget {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.admin+"/admin/usage", nil)
	req.Header.Set("Authorization", "Bearer "+e.adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /admin/usage: %v", err)
	}
	defer resp.Body.Close()
	var rep struct {
		Budgets []struct {
			Scope       string  `json:"scope"`
			USDSpent    float64 `json:"usd_spent"`
			USDReserved float64 `json:"usd_reserved"`
		} `json:"budgets"`
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/usage: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decoding /admin/usage: %v", err)
	}
	for _, b := range rep.Budgets {
		if b.Scope == "global" {
			return faultBudget{Spent: b.USDSpent, Reserved: b.USDReserved}
		}
	}
	t.Fatalf("no global budget in /admin/usage")
	return faultBudget{}
}

// faultSettled waits until no reservation is held, then checks that the
// budget's spend is exactly what the audit log says was charged.
func faultSettled(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var u faultBudget
	for {
		u = faultUsage(t, e)
		if u.Reserved == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u.Reserved != 0 {
		t.Errorf("budget reservation not released: %v USD still reserved", u.Reserved)
	}
	sum := 0.0
	for _, a := range faultAudits(t, e) {
		sum += a.CostUSD
	}
	if math.Abs(sum-u.Spent) > 1e-6 {
		t.Errorf("budget spend %v USD != sum of audited cost %v USD", u.Spent, sum)
	}
}

// faultStreamError returns the error type and message of the stream's last
// event, which must be an Anthropic error event.
func faultStreamError(t *testing.T, body []byte) (string, string) {
	t.Helper()
	evs := parseSSE(t, body)
	if len(evs) == 0 {
		t.Fatalf("empty stream")
	}
	last := evs[len(evs)-1]
	if last.Name != "error" {
		t.Fatalf("stream ended with %q, want an error event; stream:\n%s", last.Name, body)
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Name == "message_stop" || ev.Name == "error" {
			t.Errorf("stream has %q before its final error event", ev.Name)
		}
	}
	return errorBody(t, []byte(last.Data))
}

// faultStreamText joins the text deltas of a complete stream.
func faultStreamText(t *testing.T, body []byte) string {
	t.Helper()
	evs := parseSSE(t, body)
	if len(evs) == 0 || evs[len(evs)-1].Name != "message_stop" {
		t.Fatalf("stream does not end with message_stop")
	}
	return strings.Join(textDeltas(t, evs), "")
}

// faultLeakCheck snapshots the goroutines now and returns a check that
// every goroutine started since has ended (idle keep-alive connections and
// the limiter's store cleaner aside), retrying until a deadline.
func faultLeakCheck(t *testing.T) func() {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		// Pooled keep-alive connections of moat's upstream client and of
		// the test's own client.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		// A server connection idle between two requests (moat's and the
		// stand-in's) waits in Peek inside conn.serve, never in a handler.
		goleak.IgnoreAnyFunction("bufio.(*Reader).Peek"),
		goleak.IgnoreTopFunction("github.com/ulule/limiter/v3/drivers/store/memory.(*cleaner).Run"),
	}
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := goleak.Find(opts...)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines left behind:\n%v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// faultCase is one upstream fault sent through moat.
type faultCase struct {
	name   string
	fault  standin.Fault
	stream bool
	// status is the HTTP status the client sees; 200 with errType set means
	// the stream started and must end with an error event.
	status  int
	errType string
	mention string
	// auditStatus and decision are what the audit line must say.
	auditStatus int
	decision    string
	// attempts is how many requests the stand-in must have seen.
	attempts int64
	// minTook is the least the call may take: the retries' backoff.
	minTook time.Duration
}

func faultCases() []faultCase {
	const errd = audit.DecisionError
	return []faultCase{
		// Non-streaming.
		{name: "slow first byte", fault: standin.Fault{Kind: standin.FaultSlowFirstByte, Delay: time.Second}, status: 504, errType: "api_error", mention: "timed out", auditStatus: 504, decision: errd, attempts: 1},
		{name: "reset", fault: standin.Fault{Kind: standin.FaultReset}, status: 502, errType: "api_error", mention: "upstream", auditStatus: 502, decision: errd, attempts: 1},
		{name: "500", fault: standin.Fault{Kind: standin.FaultServerError}, status: 500, errType: "api_error", auditStatus: 500, decision: errd, attempts: 1},
		{name: "529 retried then passed through", fault: standin.Fault{Kind: standin.FaultOverloaded}, status: 529, errType: "overloaded_error", auditStatus: 529, decision: errd, attempts: 3, minTook: 60 * time.Millisecond},
		{name: "429 short retry-after retried", fault: standin.Fault{Kind: standin.FaultRateLimit, RetryAfter: "0.05"}, status: 429, errType: "rate_limit_error", auditStatus: 429, decision: errd, attempts: 3, minTook: 150 * time.Millisecond},
		{name: "429 retry-after over max_backoff not retried", fault: standin.Fault{Kind: standin.FaultRateLimit, RetryAfter: "30"}, status: 429, errType: "rate_limit_error", auditStatus: 429, decision: errd, attempts: 1},
		{name: "malformed json", fault: standin.Fault{Kind: standin.FaultMalformedJSON}, status: 502, errType: "api_error", mention: "malformed", auditStatus: 502, decision: errd, attempts: 1},
		{name: "malformed sse", fault: standin.Fault{Kind: standin.FaultMalformedSSE}, status: 502, errType: "api_error", mention: "malformed", auditStatus: 502, decision: errd, attempts: 1},
		{name: "truncated", fault: standin.Fault{Kind: standin.FaultTruncatedSSE}, status: 502, errType: "api_error", auditStatus: 502, decision: errd, attempts: 1},
		{name: "error event (529 when not streaming)", fault: standin.Fault{Kind: standin.FaultStreamError}, status: 529, errType: "overloaded_error", auditStatus: 529, decision: errd, attempts: 3, minTook: 60 * time.Millisecond},
		{name: "endless", fault: standin.Fault{Kind: standin.FaultEndless}, status: 502, errType: "api_error", mention: "limit", auditStatus: 502, decision: errd, attempts: 1},
		{name: "huge over max_response_bytes", fault: standin.Fault{Kind: standin.FaultHuge, Size: 1 << 20}, status: 502, errType: "api_error", mention: "65536-byte limit", auditStatus: 502, decision: errd, attempts: 1},
		{name: "huge under max_response_bytes", fault: standin.Fault{Kind: standin.FaultHuge, Size: 32 << 10}, status: 200, auditStatus: 200, decision: audit.DecisionAllow, attempts: 1},

		// Streaming: before the stream starts the client gets a JSON error
		// (and retries are allowed); after, an error event and no retry.
		{name: "slow first byte", stream: true, fault: standin.Fault{Kind: standin.FaultSlowFirstByte, Delay: time.Second}, status: 504, errType: "api_error", mention: "timed out", auditStatus: 504, decision: errd, attempts: 1},
		{name: "reset mid-stream", stream: true, fault: standin.Fault{Kind: standin.FaultReset}, status: 200, errType: "api_error", mention: "ended unexpectedly", auditStatus: 502, decision: errd, attempts: 1},
		{name: "500", stream: true, fault: standin.Fault{Kind: standin.FaultServerError}, status: 500, errType: "api_error", auditStatus: 500, decision: errd, attempts: 1},
		{name: "529 retried then passed through", stream: true, fault: standin.Fault{Kind: standin.FaultOverloaded}, status: 529, errType: "overloaded_error", auditStatus: 529, decision: errd, attempts: 3, minTook: 60 * time.Millisecond},
		{name: "429 short retry-after retried", stream: true, fault: standin.Fault{Kind: standin.FaultRateLimit, RetryAfter: "0.05"}, status: 429, errType: "rate_limit_error", auditStatus: 429, decision: errd, attempts: 3, minTook: 150 * time.Millisecond},
		{name: "429 retry-after over max_backoff not retried", stream: true, fault: standin.Fault{Kind: standin.FaultRateLimit, RetryAfter: "30"}, status: 429, errType: "rate_limit_error", auditStatus: 429, decision: errd, attempts: 1},
		{name: "malformed json mid-stream", stream: true, fault: standin.Fault{Kind: standin.FaultMalformedJSON}, status: 200, errType: "api_error", mention: "malformed", auditStatus: 502, decision: errd, attempts: 1},
		{name: "malformed sse mid-stream", stream: true, fault: standin.Fault{Kind: standin.FaultMalformedSSE}, status: 200, errType: "api_error", auditStatus: 502, decision: errd, attempts: 1},
		{name: "truncated stream", stream: true, fault: standin.Fault{Kind: standin.FaultTruncatedSSE}, status: 200, errType: "api_error", mention: "ended unexpectedly", auditStatus: 502, decision: errd, attempts: 1},
		{name: "error event mid-stream not retried", stream: true, fault: standin.Fault{Kind: standin.FaultStreamError}, status: 200, errType: "overloaded_error", auditStatus: 502, decision: errd, attempts: 1},
		{name: "endless stream capped", stream: true, fault: standin.Fault{Kind: standin.FaultEndless}, status: 200, errType: "api_error", mention: "max_stream_duration", auditStatus: 504, decision: errd, attempts: 1},
		{name: "huge stream passes", stream: true, fault: standin.Fault{Kind: standin.FaultHuge, Size: 1 << 20}, status: 200, auditStatus: 200, decision: audit.DecisionAllow, attempts: 1},
	}
}

// TestUpstreamFaults sends every fault the stand-in can inject through
// moat, streaming and not, and checks the client's error, the audit line,
// the retries, the budget and that the next request is served.
func TestUpstreamFaults(t *testing.T) {
	e := start(t, envOpts{upstream: faultUpstream, extra: faultExtra})
	// Warm up every path once so pools and lazily started goroutines exist
	// before the snapshot.
	for _, stream := range []bool{false, true} {
		if st, _, b := e.raw("POST", "/v1/messages", faultBody("warm up", stream), e.auth()); st != 200 {
			t.Fatalf("warm-up: %d %s", st, b)
		}
	}
	leaks := faultLeakCheck(t)
	for _, tc := range faultCases() {
		mode := "non-streaming"
		if tc.stream {
			mode = "streaming"
		}
		t.Run(mode+"/"+tc.name, func(t *testing.T) {
			before := len(faultAudits(t, e))
			e.si.Reset()
			f := tc.fault
			f.Count = int(tc.attempts)
			if err := e.si.SetFault(f); err != nil {
				t.Fatal(err)
			}
			defer e.si.ClearFault()
			t0 := time.Now()
			status, h, body := e.raw("POST", "/v1/messages", faultBody("fault please", tc.stream), e.auth())
			took := time.Since(t0)
			if status != tc.status {
				t.Fatalf("status = %d, want %d; body %.300s", status, tc.status, body)
			}
			var typ, msg string
			switch {
			case tc.status == 200 && tc.errType != "":
				typ, msg = faultStreamError(t, body)
			case tc.status != 200:
				typ, msg = errorBody(t, body)
			case tc.stream:
				if got := faultStreamText(t, body); len(got) != tc.fault.Size {
					t.Errorf("streamed %d bytes of text, want %d", len(got), tc.fault.Size)
				}
			default:
				var m struct {
					Content []struct{ Text string } `json:"content"`
				}
				if err := json.Unmarshal(body, &m); err != nil || len(m.Content) != 1 || len(m.Content[0].Text) != tc.fault.Size {
					t.Errorf("huge reply not relayed whole (%v)", err)
				}
			}
			if typ != tc.errType {
				t.Errorf("error type = %q, want %q (%s)", typ, tc.errType, msg)
			}
			if tc.mention != "" && !strings.Contains(msg, tc.mention) {
				t.Errorf("error message %q does not mention %q", msg, tc.mention)
			}
			if strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, ".go:") {
				t.Errorf("error leaks internals: %q", msg)
			}
			if got := e.si.RequestCount(); got != tc.attempts {
				t.Errorf("stand-in saw %d attempts, want %d", got, tc.attempts)
			}
			if took > 5*time.Second {
				t.Errorf("fault took %v to end", took)
			}
			if took < tc.minTook {
				t.Errorf("took %v, less than the retries' backoff (%v)", took, tc.minTook)
			}
			lines := faultAudits(t, e)
			if len(lines) != before+1 {
				t.Fatalf("audit lines %d -> %d, want exactly one new line", before, len(lines))
			}
			a := lines[len(lines)-1]
			if id := h.Get("x-moat-request-id"); id == "" || a.RequestID != id {
				t.Errorf("audit request_id %q, response x-moat-request-id %q", a.RequestID, id)
			}
			if a.Status != tc.auditStatus || a.Decision != tc.decision || a.Stream != tc.stream {
				t.Errorf("audit status/decision/stream = %d/%s/%v, want %d/%s/%v", a.Status, a.Decision, a.Stream, tc.auditStatus, tc.decision, tc.stream)
			}
			if tc.decision == audit.DecisionError && (a.DecidedBy != audit.ByUpstream || a.Error == "") {
				t.Errorf("audit decided_by %q error %q, want upstream with an error", a.DecidedBy, a.Error)
			}
			faultSettled(t, e)

			e.si.ClearFault()
			if st, _, b := e.raw("POST", "/v1/messages", faultBody("after the fault", tc.stream), e.auth()); st != 200 {
				t.Fatalf("next request: %d %s", st, b)
			} else if tc.stream {
				faultStreamText(t, b)
			}
		})
	}
	faultSettled(t, e)
	leaks()
}

// TestUpstreamFaultsByMarker injects faults per request through the
// stand-in's MOAT_FAULT: marker (what the soak uses) with requests running
// concurrently, and checks each gets its own outcome.
func TestUpstreamFaultsByMarker(t *testing.T) {
	e := start(t, envOpts{upstream: faultUpstream, extra: faultExtra})
	cases := []struct {
		text   string
		stream bool
		status int
	}{
		{"fine", false, 200},
		{"MOAT_FAULT:api_error", false, 500},
		{"MOAT_FAULT:reset=2", true, 200},
		{"fine too", true, 200},
		{"MOAT_FAULT:bad_json", false, 502},
		{"MOAT_FAULT:error=503", true, 503},
	}
	type result struct {
		i      int
		status int
		body   []byte
	}
	res := make(chan result, len(cases))
	for i, c := range cases {
		go func() {
			req, _ := http.NewRequest("POST", e.url+"/v1/messages", bytes.NewReader(faultBody(c.text, c.stream)))
			for k, vs := range e.auth() {
				req.Header[http.CanonicalHeaderKey(k)] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				res <- result{i, -1, []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			res <- result{i, resp.StatusCode, b.Bytes()}
		}()
	}
	for range cases {
		r := <-res
		c := cases[r.i]
		if r.status != c.status {
			t.Errorf("%q: status %d, want %d: %s", c.text, r.status, c.status, r.body)
			continue
		}
		switch {
		case c.stream && strings.Contains(c.text, "MOAT_FAULT") && r.status == 200:
			faultStreamError(t, r.body)
		case c.stream && r.status == 200:
			faultStreamText(t, r.body)
		}
	}
	if n := len(faultAudits(t, e)); n != len(cases) {
		t.Errorf("%d audit lines, want %d", n, len(cases))
	}
	faultSettled(t, e)
}

// TestRetryConnectionRefused checks that a refused connection is retried
// with backoff: an upstream that comes back during the backoff serves the
// request, and one that stays down fails after every attempt's wait.
func TestRetryConnectionRefused(t *testing.T) {
	e := start(t, envOpts{upstream: faultUpstream, extra: `
[retry]
attempts = 4
backoff = "200ms"
max_backoff = "1s"
`})
	u, err := url.Parse(e.si.URL())
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host

	t.Run("upstream comes back", func(t *testing.T) {
		e.si.Close()
		back := make(chan *standin.Server, 1)
		go func() {
			time.Sleep(80 * time.Millisecond)
			si := standin.New(standin.Options{APIKey: e.upKey})
			if err := si.Start(addr); err != nil {
				back <- nil
				return
			}
			back <- si
		}()
		status, _, body := e.raw("POST", "/v1/messages", faultBody("are you there", false), e.auth())
		si := <-back
		if si == nil {
			t.Skip("could not listen on the stand-in's old address again")
		}
		defer si.Close()
		if status != 200 {
			t.Fatalf("status %d after the upstream came back: %s", status, body)
		}
		if n := si.RequestCount(); n != 1 {
			t.Errorf("restarted stand-in saw %d requests, want 1", n)
		}
		si.Close()
	})

	t.Run("upstream stays down", func(t *testing.T) {
		// The previous subtest's stand-in just closed the pooled
		// connection moat used; give the transport a moment to notice, so
		// this call dials (refused) instead of writing to a dead
		// connection (which is not retried: the upstream might have read
		// the request).
		time.Sleep(300 * time.Millisecond)
		before := len(faultAudits(t, e))
		t0 := time.Now()
		status, _, body := e.raw("POST", "/v1/messages", faultBody("anyone?", true), e.auth())
		took := time.Since(t0)
		if status != 502 {
			t.Fatalf("status %d, want 502: %s", status, body)
		}
		if _, msg := errorBody(t, body); !strings.Contains(msg, "connection refused") {
			t.Errorf("message %q does not say connection refused", msg)
		}
		// Three waits: 200ms, 400ms, 800ms.
		if took < 1400*time.Millisecond {
			t.Errorf("gave up after %v: the refused connection was not retried with backoff", took)
		}
		if took > 5*time.Second {
			t.Errorf("took %v: backoff not bounded", took)
		}
		if n := len(faultAudits(t, e)); n != before+1 {
			t.Errorf("audit lines %d -> %d", before, n)
		}
	})
}

// TestRetryAttemptsConfig checks that [retry] attempts bounds the tries
// (1 means none) and that a success after retries is served.
func TestRetryAttemptsConfig(t *testing.T) {
	for _, attempts := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("attempts=%d", attempts), func(t *testing.T) {
			e := start(t, envOpts{upstream: faultUpstream, extra: fmt.Sprintf("[retry]\nattempts = %d\nbackoff = \"10ms\"\n", attempts)})
			// Overloaded for attempts-1 tries: the last try succeeds.
			if attempts > 1 {
				if err := e.si.SetFault(standin.Fault{Kind: standin.FaultOverloaded, Count: attempts - 1}); err != nil {
					t.Fatal(err)
				}
				if st, _, b := e.raw("POST", "/v1/messages", faultBody("eventually", false), e.auth()); st != 200 {
					t.Fatalf("status %d: %s", st, b)
				}
				if n := e.si.RequestCount(); n != int64(attempts) {
					t.Errorf("stand-in saw %d attempts, want %d", n, attempts)
				}
				e.si.Reset()
			}
			// Overloaded for more tries than allowed: the client gets 529.
			if err := e.si.SetFault(standin.Fault{Kind: standin.FaultOverloaded, Count: attempts + 1}); err != nil {
				t.Fatal(err)
			}
			if st, _, b := e.raw("POST", "/v1/messages", faultBody("never", false), e.auth()); st != 529 {
				t.Fatalf("status %d: %s", st, b)
			}
			if n := e.si.RequestCount(); n != int64(attempts) {
				t.Errorf("stand-in saw %d attempts, want %d", n, attempts)
			}
		})
	}
}
