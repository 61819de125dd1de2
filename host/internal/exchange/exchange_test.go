package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/internal/streamguard"
	"github.com/moat-gateway/moat/sdk/abi"
)

// fakeUpstream answers each request with the next of its answers and
// keeps the bodies it was sent.
type fakeUpstream struct {
	answers []*http.Response
	sent    []string
}

func (u *fakeUpstream) Send(_ context.Context, method, path string, body []byte) (*http.Response, error) {
	u.sent = append(u.sent, method+" "+path+" "+string(body))
	if len(u.answers) == 0 {
		return nil, errors.New("no answer left")
	}
	r := u.answers[0]
	u.answers = u.answers[1:]
	return r, nil
}

func answer(status int, contentType, body string) *http.Response {
	h := http.Header{"Content-Type": {contentType}, "Request-Id": {"req_up"}}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// fakeResponse keeps what the client would receive.
type fakeResponse struct {
	header http.Header
	body   []byte
	sink   *bufSink
}

func (r *fakeResponse) Header() http.Header { return r.header }
func (r *fakeResponse) JSON(b []byte)       { r.body = b }
func (r *fakeResponse) Stream() streamguard.Sink {
	r.sink = &bufSink{}
	return r.sink
}

type bufSink struct{ b []byte }

func (s *bufSink) Event(ev anthropic.Event) error { s.b = anthropic.AppendEvent(s.b, ev); return nil }
func (s *bufSink) Fail(ev anthropic.Event)        { s.b = anthropic.AppendEvent(s.b, ev) }
func (s *bufSink) Flush() error                   { return nil }

// shout is a test input stage upper-casing text, and refusing "nope".
type shout struct{}

func (shout) Name() string { return "shout" }
func (shout) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	if strings.Contains(req.Text, "nope") {
		return abi.Verdict{Action: abi.Reject, Reason: "said nope"}, nil
	}
	return abi.Verdict{Action: abi.Modify, Text: strings.ToUpper(req.Text)}, nil
}

// env is an exchange on real components (limiter, audit trail) without
// any socket.
type env struct {
	t      *testing.T
	deps   Deps
	pol    Policy
	chains Chains
	client Client
	dir    string
	// auditPath is the audit log the calls write.
	auditPath string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	// limit.Config{}: no limits, counts in memory.
	lim, err := limit.New(context.Background(), limit.Config{}, limit.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lim.Close() })
	e := &env{t: t, dir: dir, auditPath: filepath.Join(dir, "audit.jsonl")}
	al, err := audit.Open(audit.Config{Path: e.auditPath}, audit.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = al.Close() })
	e.deps = Deps{Limiter: lim, Audit: al, Logger: logger, Secrets: func() []string { return nil }, Told: told, Decide: decide}
	e.chains.Input = pipeline.Chain{{Stage: shout{}, Name: "shout"}}
	e.pol = Policy{
		Options: Options{Timeout: time.Minute, MaxResponseBytes: 1 << 20},
		Chains:  func(string) *Chains { return &e.chains },
		Clients: func(id string) *Client {
			if id == "app" {
				return &e.client
			}
			return nil
		},
	}
	return e
}

// told and decide are the edge's mapping (gateway's fault table),
// reduced to what these tests meet.
func told(err error) *APIError {
	f := fault.From(err)
	switch f.Kind {
	case fault.Forbidden:
		return &APIError{Status: http.StatusForbidden, Type: anthropic.TypePermission, Message: f.Msg}
	case fault.InvalidRequest:
		return &APIError{Status: http.StatusBadRequest, Type: anthropic.TypeInvalidRequest, Message: f.Msg}
	case fault.InputRejected:
		return &APIError{Status: http.StatusBadRequest, Type: anthropic.TypeInvalidRequest, Message: f.Msg}
	case fault.UpstreamOverloaded:
		return &APIError{Status: 529, Type: anthropic.TypeOverloaded, Message: f.Msg, Upstream: f.Quoted}
	case fault.UpstreamFailed, fault.OutputRejected:
		return &APIError{Status: http.StatusBadGateway, Type: anthropic.TypeAPI, Message: f.Msg, Upstream: f.Quoted}
	}
	return &APIError{Status: http.StatusInternalServerError, Type: anthropic.TypeAPI, Message: f.Msg}
}

func decide(err error) (string, string) {
	f := fault.From(err)
	if f.Plugin != "" {
		return audit.DecisionRefuse, audit.ByPluginPrefix + f.Plugin
	}
	return audit.DecisionError, audit.ByGateway
}

// call runs one exchange: serve on a new call with up's answers; it
// returns the client's error (nil: answered), the response and the
// audit record.
func (e *env) call(up *fakeUpstream, serve func(*Call) error) (*APIError, *fakeResponse, map[string]any) {
	e.t.Helper()
	resp := &fakeResponse{header: http.Header{}}
	var c Call
	c.Start, c.ID, c.Endpoint = time.Now(), "req_test", "/v1/messages"
	c.Who, c.Authed = auth.Identity{ClientID: "app"}, true
	c.Begin(&e.deps, &e.pol, context.Background(), up, resp)
	defer c.End()
	var ae *APIError
	if err := serve(&c); err != nil {
		ae = c.Fail(err)
	}
	return ae, resp, e.record("req_test")
}

// template compiles r's prompt.
func (e *env) template(r prompt.Route) *prompt.Template {
	e.t.Helper()
	t, err := prompt.Compile(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *env) record(id string) map[string]any {
	b, err := os.ReadFile(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["request_id"] == id {
			return m
		}
	}
	e.t.Fatalf("no audit record for %s", id)
	return nil
}

const request = `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]}`

const message = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hi."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":2}}`

const stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi.\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// TestMessages runs /v1/messages exchanges end to end without a socket:
// what the upstream reads (after the input chain), what the client
// receives, and the audit record.
func TestMessages(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		answers  []*http.Response
		status   int    // 0: answered
		sent     string // in what the upstream read
		got      string // in what the client received
		decision string
		by       string
	}{
		{"whole", request, []*http.Response{answer(200, "application/json", message)}, 0, "HELLO THERE", `"text":"Hi."`, "allow", ""},
		{"streamed", strings.Replace(request, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), []*http.Response{answer(200, "text/event-stream", stream)}, 0, "HELLO THERE", "event: message_stop", "allow", ""},
		{"input refused", strings.Replace(request, "hello", "nope", 1), nil, 400, "", "input rejected by plugin \"shout\"", "refuse", "plugin:shout"},
		{"upstream error", request, []*http.Response{answer(529, "application/json", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)}, 529, "HELLO THERE", "Overloaded", "error", "gateway"},
		{"not a stream", strings.Replace(request, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), []*http.Response{answer(200, "application/json", message)}, 502, "HELLO THERE", "did not return an event stream", "error", "gateway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			up := &fakeUpstream{answers: tc.answers}
			ae, resp, rec := e.call(up, func(c *Call) error { return c.Messages([]byte(tc.body)) })
			received := string(resp.body)
			if resp.sink != nil {
				received = string(resp.sink.b)
			}
			if ae != nil {
				received = ae.Message
			}
			if (ae == nil) != (tc.status == 0) || ae != nil && ae.Status != tc.status {
				t.Fatalf("error %v, want status %d", ae, tc.status)
			}
			if !strings.Contains(received, tc.got) {
				t.Errorf("client received %q, want %q in it", received, tc.got)
			}
			if tc.sent != "" && (len(up.sent) != 1 || !strings.Contains(up.sent[0], tc.sent)) {
				t.Errorf("upstream read %q, want %q in it", up.sent, tc.sent)
			}
			if rec["decision"] != tc.decision || tc.by != "" && rec["decided_by"] != tc.by {
				t.Errorf("audit decision %v by %v, want %s by %s", rec["decision"], rec["decided_by"], tc.decision, tc.by)
			}
		})
	}
}

// TestClientPolicy: the caller's client's policy (Policy.Clients) is what
// a call enforces: its models, its max_tokens cap, its system prompt and
// its wrapping.
func TestClientPolicy(t *testing.T) {
	cases := []struct {
		name   string
		client Client
		status int    // 0: answered
		sent   string // in what the upstream read
	}{
		{"zero policy", Client{}, 0, `"content":"HELLO THERE"`},
		{"model allowed", Client{Models: []string{"claude-haiku-*"}}, 0, "HELLO THERE"},
		{"model refused", Client{Models: []string{"claude-opus-*"}}, http.StatusForbidden, ""},
		{"under cap", Client{MaxTokens: 16}, 0, "HELLO THERE"},
		{"over cap", Client{MaxTokens: 8}, http.StatusBadRequest, ""},
		{"prepended system", Client{System: anthropic.SystemPrepend, SystemPrompt: "Be brief."}, 0, "Be brief."},
		{"wrapped", Client{WrapUserInput: true, Tag: "data"}, 0, "<data_"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.client = tc.client
			up := &fakeUpstream{answers: []*http.Response{answer(200, "application/json", message)}}
			ae, _, _ := e.call(up, func(c *Call) error { return c.Messages([]byte(request)) })
			if (ae == nil) != (tc.status == 0) || ae != nil && ae.Status != tc.status {
				t.Fatalf("error %v, want status %d", ae, tc.status)
			}
			if tc.status != 0 {
				if len(up.sent) != 0 {
					t.Fatalf("a refused call reached the upstream: %q", up.sent)
				}
				return
			}
			if len(up.sent) != 1 || !strings.Contains(up.sent[0], tc.sent) {
				t.Fatalf("upstream read %q, want %q in it", up.sent, tc.sent)
			}
		})
	}
}

// TestCountTokens: a count is of what the model would read (the input
// chain ran), and the upstream's answer is scrubbed of keys.
func TestCountTokens(t *testing.T) {
	e := newEnv(t)
	// A key-shaped string built at run time, so that no key-like literal
	// sits in the tree.
	keyLike := "sk-" + "ant-" + "api03-" + strings.Repeat("TESTONLYfake", 3)
	up := &fakeUpstream{answers: []*http.Response{answer(200, "application/json", `{"input_tokens":3,"note":"`+keyLike+`"}`)}}
	ae, resp, rec := e.call(up, func(c *Call) error { return c.CountTokens([]byte(request)) })
	if ae != nil {
		t.Fatalf("count failed: %v", ae)
	}
	if len(up.sent) != 1 || !strings.HasPrefix(up.sent[0], "POST /v1/messages/count_tokens ") || !strings.Contains(up.sent[0], "HELLO THERE") {
		t.Errorf("upstream read %q", up.sent)
	}
	if strings.Contains(string(resp.body), keyLike) || !strings.Contains(string(resp.body), `"input_tokens":3`) {
		t.Errorf("client received %s", resp.body)
	}
	if rec["decision"] != "allow" {
		t.Errorf("audit %v", rec)
	}
}

// TestRouteStream: a streamed route call relays the upstream's events
// through its output stages and ends with message_stop after the record.
func TestRouteStream(t *testing.T) {
	e := newEnv(t)
	up := &fakeUpstream{answers: []*http.Response{answer(200, "text/event-stream", stream)}}
	rt := &Route{Name: "greet", Model: "claude-haiku-4-5", MaxTokens: 1024, Stream: true, PromptBytes: len("Greet."),
		Template: e.template(prompt.Route{Name: "greet", Task: "Greet."}), Chains: Chains{Input: e.chains.Input}}
	ae, resp, rec := e.call(up, func(c *Call) error { return c.ServeRoute(rt, []byte(`{"input":"hi","stream":true}`)) })
	if ae != nil || resp.sink == nil {
		t.Fatalf("route failed: %v", ae)
	}
	if !strings.Contains(up.sent[0], `"stream":true`) || !strings.Contains(up.sent[0], "HI") {
		t.Errorf("upstream read %q", up.sent)
	}
	if !strings.HasSuffix(string(resp.sink.b), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Errorf("stream %s", resp.sink.b)
	}
	if rec["stream"] != true || rec["route"] != "greet" || rec["output_tokens"] != float64(2) {
		t.Errorf("audit %v", rec)
	}
}

// TestRouteRepair: a JSON route's answer refused by its schema (a stage
// that Repairs) goes back to the model with the reason; the second answer
// passes, and the call is charged for both.
func TestRouteRepair(t *testing.T) {
	e := newEnv(t)
	schema, err := streamguard.Schema(map[string]any{"type": "object", "required": []any{"label"}})
	if err != nil {
		t.Fatal(err)
	}
	rt := &Route{Name: "classify", Model: "claude-haiku-4-5", MaxTokens: 1024, JSON: true, RepairRetries: 1, PromptBytes: len("Classify."),
		Template: e.template(prompt.Route{Name: "classify", Task: "Classify."}), Chains: Chains{Schema: &schema}}
	bad := strings.Replace(message, `"text":"Hi."`, `"text":"{\"x\":1}"`, 1)
	good := strings.Replace(message, `"text":"Hi."`, `"text":"{\"label\":\"ok\"}"`, 1)
	up := &fakeUpstream{answers: []*http.Response{answer(200, "application/json", bad), answer(200, "application/json", good)}}
	ae, resp, rec := e.call(up, func(c *Call) error { return c.ServeRoute(rt, []byte(`{"input":"text"}`)) })
	if ae != nil {
		t.Fatalf("route failed: %v", ae)
	}
	if len(up.sent) != 2 || !strings.Contains(up.sent[1], "Your previous answer failed validation") {
		t.Fatalf("upstream read %q, want a repair round", up.sent)
	}
	if !strings.Contains(string(resp.body), `"output":{"label":"ok"}`) {
		t.Errorf("answer %s", resp.body)
	}
	if rec["output_tokens"] != float64(4) {
		t.Errorf("charged %v output tokens, want both rounds' 4", rec["output_tokens"])
	}
}

// TestRouteStopReason: a route's answer passes the upstream's stop_reason
// on unjudged, so only in the API's shape; anything else is dropped.
func TestRouteStopReason(t *testing.T) {
	keyLike := "sk-" + "ant-" + "api03-" + strings.Repeat("TESTONLYfake", 3)
	for _, tc := range []struct{ stop, want string }{
		{"end_turn", `"stop_reason":"end_turn"`},
		{"<img src=x onerror=alert(1)>", ""},
		{keyLike, ""},
	} {
		e := newEnv(t)
		rt := &Route{Name: "greet", Model: "claude-haiku-4-5", MaxTokens: 1024, PromptBytes: len("Greet."),
			Template: e.template(prompt.Route{Name: "greet", Task: "Greet."}), Chains: Chains{Input: e.chains.Input}}
		b, _ := json.Marshal(tc.stop)
		body := strings.Replace(message, `"stop_reason":"end_turn"`, `"stop_reason":`+string(b), 1)
		up := &fakeUpstream{answers: []*http.Response{answer(200, "application/json", body)}}
		ae, resp, _ := e.call(up, func(c *Call) error { return c.ServeRoute(rt, []byte(`{"input":"hi"}`)) })
		if ae != nil {
			t.Fatalf("route failed: %v", ae)
		}
		if tc.want != "" && !strings.Contains(string(resp.body), tc.want) || tc.want == "" && strings.Contains(string(resp.body), "stop_reason") {
			t.Errorf("stop_reason %q: answer %s", tc.stop, resp.body)
		}
	}
}

// TestRouteRefusesUnreadableAnswer: a route's answer is read by the strict
// decoder, as the Messages endpoint's is; a body it cannot read (a
// duplicate text, which encoding/json would take the last of) is refused
// as the upstream's failure, and the refusal is on the record.
func TestRouteRefusesUnreadableAnswer(t *testing.T) {
	e := newEnv(t)
	rt := &Route{Name: "greet", Model: "claude-haiku-4-5", MaxTokens: 1024, PromptBytes: len("Greet."),
		Template: e.template(prompt.Route{Name: "greet", Task: "Greet."}), Chains: Chains{Input: e.chains.Input}}
	body := strings.Replace(message, `"text":"Hi."`, `"text":"Hi.","text":"second"`, 1)
	up := &fakeUpstream{answers: []*http.Response{answer(200, "application/json", body)}}
	ae, resp, rec := e.call(up, func(c *Call) error { return c.ServeRoute(rt, []byte(`{"input":"hi"}`)) })
	if ae == nil || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "malformed") {
		t.Fatalf("error %+v (answer %s), want a 502 naming a malformed response", ae, resp.body)
	}
	if strings.Contains(string(resp.body), "second") {
		t.Errorf("client received %s", resp.body)
	}
	if rec["decision"] == nil || rec["decision"] == "allow" {
		t.Errorf("audit %v", rec)
	}
}
