package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/sdk/abi"
)

// TestFaultTable: every kind has a row, and each row answers and records as
// the contract says. A kind added to fault without a row here and in
// faultTable fails.
func TestFaultTable(t *testing.T) {
	type want struct {
		status   int
		typ      string
		decision string
		by       string
	}
	const (
		refuse = audit.DecisionRefuse
		errd   = audit.DecisionError
	)
	wants := map[fault.Kind]want{
		fault.Internal:           {500, anthropic.TypeAPI, errd, audit.ByGateway},
		fault.InvalidRequest:     {400, anthropic.TypeInvalidRequest, refuse, audit.ByGateway},
		fault.Unauthenticated:    {401, anthropic.TypeAuthentication, refuse, audit.ByAuth},
		fault.Forbidden:          {403, anthropic.TypePermission, refuse, audit.ByGateway},
		fault.NotFound:           {404, anthropic.TypeNotFound, refuse, audit.ByGateway},
		fault.TooLarge:           {413, anthropic.TypeRequestTooLarge, refuse, audit.ByGateway},
		fault.RateLimited:        {429, anthropic.TypeRateLimit, refuse, audit.ByRateLimit},
		fault.BudgetExhausted:    {429, anthropic.TypeRateLimit, refuse, audit.ByBudget},
		fault.OverBudget:         {400, anthropic.TypeInvalidRequest, refuse, audit.ByBudget},
		fault.StoreUnavailable:   {503, anthropic.TypeAPI, refuse, audit.ByRateLimit},
		fault.AuditUnavailable:   {503, anthropic.TypeAPI, errd, audit.ByGateway},
		fault.InputRejected:      {400, anthropic.TypeInvalidRequest, refuse, "plugin:p"},
		fault.OutputRejected:     {502, anthropic.TypeAPI, refuse, "plugin:p"},
		fault.PluginFailed:       {502, anthropic.TypeAPI, errd, "plugin:p"},
		fault.UpstreamFailed:     {502, anthropic.TypeAPI, errd, audit.ByUpstream},
		fault.UpstreamTimeout:    {504, anthropic.TypeAPI, errd, audit.ByUpstream},
		fault.UpstreamOverloaded: {529, anthropic.TypeOverloaded, errd, audit.ByUpstream},
		// Relayed: the upstream's status and type (set on the error below).
		fault.UpstreamError:   {503, anthropic.TypeOverloaded, errd, audit.ByUpstream},
		fault.UpstreamRefused: {404, anthropic.TypeNotFound, refuse, audit.ByGateway},
		fault.ClientGone:      {499, anthropic.TypeAPI, refuse, audit.ByGateway},
	}
	for _, k := range fault.Kinds() {
		t.Run(k.String(), func(t *testing.T) {
			if _, ok := faultTable[k]; !ok {
				t.Fatalf("kind %s has no row in faultTable", k)
			}
			w, ok := wants[k]
			if !ok {
				t.Fatalf("kind %s has no expected row in this test", k)
			}
			f := &fault.Error{Kind: k, Msg: "m", Plugin: "p"}
			switch k {
			case fault.UpstreamError:
				f.Status, f.Type = 503, anthropic.TypeOverloaded
			case fault.UpstreamRefused:
				f.Status, f.Type = 404, anthropic.TypeNotFound
			}
			ae := toAPI(fmt.Errorf("a step: %w", f))
			if ae.Status != w.status || ae.Type != w.typ || ae.Message != "m" {
				t.Errorf("answer %d %s %q, want %d %s \"m\"", ae.Status, ae.Type, ae.Message, w.status, w.typ)
			}
			if dec, by := decision(f); dec != w.decision || by != w.by {
				t.Errorf("audit %s by %s, want %s by %s", dec, by, w.decision, w.by)
			}
		})
	}
	if len(faultTable) != len(fault.Kinds()) {
		t.Errorf("faultTable has %d rows for %d kinds", len(faultTable), len(fault.Kinds()))
	}
}

// TestToAPI: how errors that are not a bare *fault.Error, and a fault's
// extras, reach the client.
func TestToAPI(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		status      int
		typ, msg    string
		header      map[string]string
		dec, by     string
		quoted      bool
		causeInTold bool
	}{
		{name: "unclassified", err: errors.New("boom"), status: 500, typ: anthropic.TypeAPI, msg: "internal error", dec: audit.DecisionError, by: audit.ByGateway},
		{name: "rate limit headers and retry-after",
			err:    &fault.Error{Kind: fault.RateLimited, Msg: "slow down", RetryAfter: 1500 * time.Millisecond, Header: http.Header{"X-Ratelimit-Remaining": {"0"}}},
			status: 429, typ: anthropic.TypeRateLimit, msg: "slow down", header: map[string]string{"Retry-After": "2", "X-RateLimit-Remaining": "0"}, dec: audit.DecisionRefuse, by: audit.ByRateLimit},
		{name: "store unavailable keeps its cause out of the message",
			err:    &fault.Error{Kind: fault.StoreUnavailable, Msg: "rate-limit store unavailable", Err: errors.New("dial redis: refused"), RetryAfter: time.Second},
			status: 503, typ: anthropic.TypeAPI, msg: "rate-limit store unavailable", header: map[string]string{"Retry-After": "1"}, dec: audit.DecisionRefuse, by: audit.ByRateLimit},
		{name: "input reject", err: &pipeline.RejectError{Plugin: "deny", Reason: "no", Phase: abi.PhaseInput},
			status: 400, typ: anthropic.TypeInvalidRequest, msg: `input rejected by plugin "deny": no`, dec: audit.DecisionRefuse, by: "plugin:deny"},
		{name: "output reject", err: fmt.Errorf("judging: %w", &pipeline.RejectError{Plugin: "canary", Reason: "leak", Phase: abi.PhaseOutput}),
			status: 502, typ: anthropic.TypeAPI, msg: `output rejected by plugin "canary": leak`, dec: audit.DecisionRefuse, by: "plugin:canary"},
		{name: "plugin failed", err: &pipeline.PluginError{Plugin: "slow", Phase: abi.PhaseInput, Err: errors.New("timeout")},
			status: 502, typ: anthropic.TypeAPI, msg: `plugin "slow" failed; the request was refused (on_error = "reject")`, dec: audit.DecisionError, by: "plugin:slow"},
		{name: "relayed unknown type becomes the status's", err: &fault.Error{Kind: fault.UpstreamError, Status: 529, Type: "made_up_error", Msg: "busy", Quoted: true},
			status: 529, typ: anthropic.TypeOverloaded, msg: "busy", quoted: true, dec: audit.DecisionError, by: audit.ByUpstream},
		{name: "relayed refusal", err: &fault.Error{Kind: fault.UpstreamRefused, Status: 400, Type: anthropic.TypeInvalidRequest, Msg: "bad", Quoted: true},
			status: 400, typ: anthropic.TypeInvalidRequest, msg: "bad", quoted: true, dec: audit.DecisionRefuse, by: audit.ByGateway},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ae := toAPI(tc.err)
			if ae.Status != tc.status || ae.Type != tc.typ || ae.Message != tc.msg || ae.Upstream != tc.quoted {
				t.Fatalf("got %d %s %q quoted=%v, want %d %s %q quoted=%v", ae.Status, ae.Type, ae.Message, ae.Upstream, tc.status, tc.typ, tc.msg, tc.quoted)
			}
			for k, v := range tc.header {
				if got := ae.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if len(tc.header) == 0 && len(ae.Header) != 0 {
				t.Errorf("headers %v, want none", ae.Header)
			}
			if dec, by := decision(tc.err); dec != tc.dec || by != tc.by {
				t.Errorf("audit %s by %s, want %s by %s", dec, by, tc.dec, tc.by)
			}
		})
	}
}

// TestCauseOf: a 5xx's audit cause is what the error says beyond the
// client's message, and nothing when the message is the whole story.
func TestCauseOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"bare fault", fault.New(fault.UpstreamFailed, "upstream unreachable"), ""},
		{"fault with a cause", fault.Wrap(fault.StoreUnavailable, errors.New("dial: refused"), "store down"), "store down: dial: refused"},
		{"wrapped by a step", fmt.Errorf("rendering route: %w", errors.New("task uses {{var.x}}")), "rendering route: task uses {{var.x}}"},
		{"plugin failure", &pipeline.PluginError{Plugin: "p", Phase: abi.PhaseInput, Err: errors.New("trap")}, `plugin "p" failed on input: trap`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange.CauseOf(tc.err, toAPI(tc.err)); got != tc.want {
				t.Fatalf("cause %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuditDecider: through the gateway, each refusal's record names who
// decided it: its kind's row, except that authentication's refusals are
// auth's whatever their kind.
func TestAuditDecider(t *testing.T) {
	const message = `{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name, client, extra string
		body                string // "" = a valid message
		status              int
		decision, by        string
	}{
		{name: "address refused by auth (forbidden)", client: `allow_ips = ["10.0.0.0/8"]`,
			status: 403, decision: audit.DecisionRefuse, by: audit.ByAuth},
		{name: "model refused by the gateway (forbidden)", client: `models = ["claude-other"]`,
			status: 403, decision: audit.DecisionRefuse, by: audit.ByGateway},
		{name: "larger than a whole budget", extra: "[[budgets]]\nscope = \"global\"\nperiod = \"day\"\ntokens = 1\n",
			status: 400, decision: audit.DecisionRefuse, by: audit.ByBudget},
		{name: "malformed metadata.user_id refused by auth (invalid request)", body: `{"model":"claude-haiku-4-5","max_tokens":8,"metadata":{"user_id":"a\nb"},"messages":[{"role":"user","content":"hi"}]}`,
			status: 400, decision: audit.DecisionRefuse, by: audit.ByAuth},
		{name: "malformed request refused by the gateway (invalid request)", body: `{"model":"claude-haiku-4-5","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`,
			status: 400, decision: audit.DecisionRefuse, by: audit.ByGateway},
		{name: "served", status: 200, decision: audit.DecisionAllow, by: ""},
	}
	if auth.Decider != audit.ByAuth {
		t.Fatalf("auth names itself %q, the audit record's decider is %q", auth.Decider, audit.ByAuth)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t, tc.client, tc.extra)
			req := tc.body
			if req == "" {
				req = message
			}
			status, id, body := tg.do("POST", "/v1/messages", req)
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
			rec := tg.auditRecord(id)
			by, _ := rec["decided_by"].(string)
			if rec["decision"] != tc.decision || by != tc.by {
				t.Fatalf("record decided %v by %q, want %s by %q", rec["decision"], by, tc.decision, tc.by)
			}
		})
	}
}
