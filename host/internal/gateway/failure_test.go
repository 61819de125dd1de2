package gateway

import (
	"strings"
	"testing"
)

// TestServerErrorCauses: every 5xx has its cause in one "request failed"
// log line carrying the request id the client saw, and in the call's
// audit record, while the client gets only the mapped message. A 4xx logs
// no such line.
func TestServerErrorCauses(t *testing.T) {
	const message = `{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	const route = "[[routes]]\nname = \"greet\"\nmodel = \"claude-haiku-4-5\"\ntask = \"Greet {{var.who}}.\"\nvariables = [\"who\"]\n"
	cases := []struct {
		name       string
		client     string
		break_     func(tg *testGateway)
		method     string
		path, body string
		status     int
		told       string // in the client's body and the record's error
		cause      string // in the record's cause and the log ("" = none in the record)
		level      string // of the log line; "" = no line
	}{
		{
			name:   "unclassified error",
			client: `routes = ["greet"]`,
			// A route whose compiled template went missing behind the
			// state's back: the render fails with an error no component
			// classifies.
			break_: func(tg *testGateway) { tg.g.State().routes["greet"].Template = nil },
			method: "POST", path: "/v1/routes/greet", body: `{"variables":{"who":"Ada"}}`,
			status: 500, told: "internal error", cause: "rendering route: no compiled template", level: "ERROR",
		},
		{
			name:   "panic",
			break_: func(tg *testGateway) { tg.g.State().Auth = nil },
			method: "POST", path: "/v1/messages", body: message,
			status: 500, told: "internal error", cause: "serving /v1/messages: panic: runtime error", level: "ERROR",
		},
		{
			name:   "upstream unreachable",
			break_: func(tg *testGateway) { _ = tg.si.Close() },
			method: "POST", path: "/v1/messages", body: message,
			status: 502, told: "upstream", level: "WARN",
		},
		{
			name:   "refusal is not logged",
			method: "POST", path: "/v1/nowhere", body: message,
			status: 404, told: "no route for POST /v1/nowhere",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t, tc.client, route)
			if tc.break_ != nil {
				tc.break_(tg)
			}
			status, id, body := tg.do(tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.told) {
				t.Fatalf("got %d %s, want %d with %q", status, body, tc.status, tc.told)
			}
			if tc.cause != "" && strings.Contains(body, tc.cause) {
				t.Errorf("the client saw the cause: %s", body)
			}
			rec := tg.auditRecord(id)
			if got, _ := rec["error"].(string); !strings.Contains(got, tc.told) {
				t.Errorf("audit error %q, want it to contain %q", got, tc.told)
			}
			if got, _ := rec["cause"].(string); (tc.cause == "") != (got == "") || !strings.Contains(got, tc.cause) {
				t.Errorf("audit cause %q, want %q", got, tc.cause)
			}
			lines := tg.logLines("request failed", id)
			if tc.level == "" {
				if len(lines) != 0 {
					t.Fatalf("a %d logged %v", status, lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("%d \"request failed\" lines for %s, want 1:\n%s", len(lines), id, tg.logs.String())
			}
			l := lines[0]
			want := tc.cause
			if want == "" {
				want = tc.told
			}
			if cause, _ := l["cause"].(string); l["level"] != tc.level || !strings.Contains(cause, want) || l["status"] != float64(tc.status) {
				t.Errorf("log line %v, want level %s, status %d, cause with %q", l, tc.level, tc.status, want)
			}
		})
	}
}
