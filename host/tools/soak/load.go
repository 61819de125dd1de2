package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// model is the model every soak request names.
const model = "claude-sonnet-5-5"

// kind is what a request is meant to exercise.
type kind int

const (
	kindNormal  kind = iota // a plain call: must succeed
	kindNoisy               // the rate-limited client: 200 or 429
	kindSpender             // the budget-limited user: 200 or 429 (budget)
	kindLoop                // the hostile plugin loops: 502
	kindFault               // an injected upstream fault: an error
)

// Outcome names a request's fate in the report.
type Outcome string

// Outcomes.
const (
	OutcomeOK          Outcome = "200"
	OutcomeRateLimited Outcome = "429 rate limit (intended)"
	OutcomeBudget      Outcome = "429 budget (intended)"
	OutcomeLoop        Outcome = "502 plugin loop (intended)"
	OutcomeFault       Outcome = "injected upstream fault"
	OutcomeUnexpected  Outcome = "unexpected failure"
)

// Outcomes lists the outcomes in report order.
var Outcomes = []Outcome{OutcomeOK, OutcomeRateLimited, OutcomeBudget, OutcomeLoop, OutcomeFault, OutcomeUnexpected}

// faultMarkers are the stand-in faults the soak injects: each fails the
// call, streaming or not.
var faultMarkers = []string{
	"api_error", "overloaded", "reset", "reset=2", "bad_json", "bad_sse",
	"truncated", "stream_error", "error=503",
}

// texts are the benign user texts the load draws from.
var texts = []string{
	"Summarize why small, well-tested functions are easier to maintain.",
	"List three things to check before deploying a web service.",
	"Translate 'good morning, the meeting moved to Thursday' into French.",
	"What is the difference between a process and a thread? Keep it short.",
	"Write one sentence about the history of the printing press.",
	"Café, naïve, 東京 and emoji 🌍: explain Unicode normalization briefly.",
}

// result is one request's outcome.
type result struct {
	kind    kind
	stream  bool
	outcome Outcome
	id      string
	detail  string
	noisy   bool
}

// tally collects results from the workers.
type tally struct {
	mu         sync.Mutex
	counts     map[Outcome]int
	ids        map[string]int
	noIDs      int
	noisyPass  int
	samples    []string
	sent       int
	streams    int
	latencySum time.Duration
}

func newTally() *tally {
	return &tally{counts: map[Outcome]int{}, ids: map[string]int{}}
}

func (t *tally) add(r result, took time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if r.stream {
		t.streams++
	}
	t.latencySum += took
	t.counts[r.outcome]++
	if r.id != "" {
		t.ids[r.id]++
	} else {
		t.noIDs++
	}
	if r.noisy && r.outcome != OutcomeRateLimited {
		t.noisyPass++
	}
	if r.outcome == OutcomeUnexpected && len(t.samples) < 20 {
		t.samples = append(t.samples, r.detail)
	}
}

// loader sends the mixed load to one moat.
type loader struct {
	url      string
	appKey   string
	noisyKey string
	hc       *http.Client
	tally    *tally
	// rates of the special kinds, as fractions of all requests.
	faultRate, loopRate, noisyRate, spenderRate float64
}

// run sends requests from conc workers until ctx ends.
func (l *loader) run(ctx context.Context, conc int, seed uint64) {
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for n := 0; ctx.Err() == nil; n++ {
				k := l.pick(rng)
				stream := rng.IntN(2) == 0
				t0 := time.Now()
				r := l.one(k, stream, rng, fmt.Sprintf("w%d-%d", w, n))
				l.tally.add(r, time.Since(t0))
			}
		}()
	}
	wg.Wait()
}

func (l *loader) pick(rng *rand.Rand) kind {
	x := rng.Float64()
	switch {
	case x < l.faultRate:
		return kindFault
	case x < l.faultRate+l.loopRate:
		return kindLoop
	case x < l.faultRate+l.loopRate+l.noisyRate:
		return kindNoisy
	case x < l.faultRate+l.loopRate+l.noisyRate+l.spenderRate:
		return kindSpender
	}
	return kindNormal
}

// one sends one request of kind k and classifies the answer.
func (l *loader) one(k kind, stream bool, rng *rand.Rand, tag string) result {
	text := texts[rng.IntN(len(texts))] + " (" + tag + ")"
	key, user := l.appKey, fmt.Sprintf("user-%02d", rng.IntN(50))
	switch k {
	case kindFault:
		text += " " + standin.MarkerPrefix + faultMarkers[rng.IntN(len(faultMarkers))]
	case kindLoop:
		text += " " + LoopMarker
	case kindNoisy:
		key, user = l.noisyKey, ""
	case kindSpender:
		user = "spender"
	}
	body, _ := json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": maxTokens,
		"stream":     stream,
		"messages":   []map[string]any{{"role": "user", "content": text}},
	})
	r := result{kind: k, stream: stream, noisy: k == kindNoisy}
	req, err := http.NewRequest(http.MethodPost, l.url+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		r.outcome, r.detail = OutcomeUnexpected, err.Error()
		return r
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	if user != "" {
		req.Header.Set("x-soak-user", user)
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		r.outcome, r.detail = OutcomeUnexpected, fmt.Sprintf("%s: %v", tag, err)
		return r
	}
	defer resp.Body.Close()
	r.id = resp.Header.Get("x-moat-request-id")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.outcome, r.detail = OutcomeUnexpected, fmt.Sprintf("%s: reading the answer: %v", tag, err)
		return r
	}
	r.outcome, r.detail = classify(k, stream, resp.StatusCode, b)
	if r.detail != "" {
		r.detail = tag + ": " + r.detail
	}
	return r
}

// classify decides a request's outcome from what came back.
func classify(k kind, stream bool, status int, b []byte) (Outcome, string) {
	errType, errMsg, complete := "", "", false
	switch {
	case status == http.StatusOK && stream:
		last, lastData := lastEvent(b)
		switch last {
		case "message_stop":
			complete = true
		case "error":
			errType, errMsg = errorOf(lastData)
		default:
			return OutcomeUnexpected, fmt.Sprintf("stream ended with %q, neither message_stop nor error", last)
		}
	case status == http.StatusOK:
		var m struct {
			Type    string            `json:"type"`
			Content []json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Type != "message" || len(m.Content) == 0 {
			return OutcomeUnexpected, fmt.Sprintf("200 with a body that is not a message: %.200s", b)
		}
		complete = true
	default:
		errType, errMsg = errorOf(b)
		if errType == "" {
			return OutcomeUnexpected, fmt.Sprintf("status %d with a body that is not an Anthropic error: %.200s", status, b)
		}
	}
	switch {
	case complete && (k == kindFault || k == kindLoop):
		return OutcomeUnexpected, "served although a fault or a plugin loop was requested"
	case complete:
		return OutcomeOK, ""
	case status == http.StatusTooManyRequests && k == kindNoisy && errType == anthropic.TypeRateLimit && !strings.Contains(errMsg, "budget"):
		return OutcomeRateLimited, ""
	case status == http.StatusTooManyRequests && k == kindSpender && strings.Contains(errMsg, "budget"):
		return OutcomeBudget, ""
	case status == http.StatusBadGateway && k == kindLoop && strings.Contains(errMsg, `plugin "looper"`):
		return OutcomeLoop, ""
	case k == kindFault && (status >= 500 || (status == http.StatusOK && errType != "")):
		return OutcomeFault, ""
	}
	return OutcomeUnexpected, fmt.Sprintf("status %d %s: %s", status, errType, errMsg)
}

// lastEvent returns the name and data of the last event of an SSE body.
func lastEvent(b []byte) (string, []byte) {
	var name string
	var data []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("event:")); ok {
			name, data = string(bytes.TrimSpace(v)), nil
		} else if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimSpace(v)...)
		}
	}
	return name, data
}

// errorOf returns the type and message of an Anthropic error body, or "".
func errorOf(b []byte) (string, string) {
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Type != "error" || e.Error.Type == "" {
		return "", ""
	}
	return e.Error.Type, e.Error.Message
}
