package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// jsonRoutes is a JSON route with a schema and one repair, streamable, and
// a client whose /v1/messages output must be JSON of the same schema.
const jsonRoutes = `
[[routes]]
name = "person"
model = "claude-sonnet-5-5"
task = "Extract the person: {{input}}"
max_tokens = 200
format = "json"
repair_retries = 1
stream = true
clients = ["app"]
schema = { type = "object", required = ["name", "age"], properties = { name = { type = "string" }, age = { type = "integer", minimum = 0 } } }
`

const jsonClientBody = `format = "json"
schema = { type = "object", required = ["name", "age"], properties = { name = { type = "string" }, age = { type = "integer" } } }
output = []`

type routeAnswer struct {
	Output json.RawMessage `json:"output"`
	Usage  struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

// TestJSONModeRepair: a schema failure, then a successful repair; the
// answer's usage, the audit record and the budget count both upstream
// calls.
func TestJSONModeRepair(t *testing.T) {
	e := start(t, envOpts{extra: jsonRoutes + `
[pricing."claude-sonnet-5-5"]
input = 1000.0
output = 1000.0

[[budgets]]
scope = "client"
id = "app"
usd = 100.0
`})
	post := func(body string) (int, []byte) {
		s, _, b := e.raw(http.MethodPost, "/v1/routes/person", []byte(body), e.auth())
		return s, b
	}
	e.si.SetUsage(&standin.Usage{InputTokens: 120, OutputTokens: 30})

	t.Run("failure then repair", func(t *testing.T) {
		e.si.SetReplies([]string{`{"name":"Ada"}`, `{"name":"Ada","age":36}`})
		before := e.si.RequestCount()
		s, b := post(`{"input":"Ada Lovelace, 36"}`)
		if s != 200 {
			t.Fatalf("status %d %s", s, b)
		}
		var a routeAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		if string(a.Output) != `{"age":36,"name":"Ada"}` && string(a.Output) != `{"name":"Ada","age":36}` {
			t.Errorf("output = %s", a.Output)
		}
		if calls := e.si.RequestCount() - before; calls != 2 {
			t.Fatalf("upstream calls = %d, want 2", calls)
		}
		if a.Usage.InputTokens != 240 || a.Usage.OutputTokens != 60 {
			t.Errorf("usage = %+v, want both calls (240 in, 60 out)", a.Usage)
		}
		repair := string(e.si.Last().Body)
		if !strings.Contains(repair, "failed validation") || !strings.Contains(repair, `\"name\":\"Ada\"}`) {
			t.Errorf("the repair call does not carry the failed answer and the reason: %s", repair)
		}
		lines := e.auditLines()
		var rec struct {
			InputTokens  int64   `json:"input_tokens"`
			OutputTokens int64   `json:"output_tokens"`
			CostUSD      float64 `json:"cost_usd"`
			Decision     string  `json:"decision"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
			t.Fatal(err)
		}
		// $1000 per million tokens: 300 tokens cost $0.30.
		if rec.InputTokens != 240 || rec.OutputTokens != 60 || !near(rec.CostUSD, 0.30) {
			t.Errorf("audit record %s, want both calls' tokens and $0.30", lines[len(lines)-1])
		}
		if spent := budgetSpent(t, e, "client", "app"); !near(spent, 0.30) {
			t.Errorf("client budget spent $%v, want $0.30 (both calls)", spent)
		}
	})
	t.Run("failure after the repair is refused and charged", func(t *testing.T) {
		spentBefore := budgetSpent(t, e, "client", "app")
		e.si.SetReplies([]string{`{"name":"Ada"}`, `{"name":"Ada","age":"old"}`})
		s, b := post(`{"input":"Ada"}`)
		if s != http.StatusBadGateway {
			t.Fatalf("status %d %s", s, b)
		}
		if _, msg := errorBody(t, b); !strings.Contains(msg, "json-schema") {
			t.Errorf("error does not name the schema check: %s", msg)
		}
		if strings.Contains(string(b), `"old"`) {
			t.Errorf("the invalid output reached the client: %s", b)
		}
		if d := budgetSpent(t, e, "client", "app") - spentBefore; !near(d, 0.30) {
			t.Errorf("a refused route still used two calls: charged $%v, want $0.30", d)
		}
	})
}

// TestJSONModeStreamingBuffers: JSON output is validated whole before any
// of it streams, on a route and on a format = "json" client.
func TestJSONModeStreamingBuffers(t *testing.T) {
	jsonKey, jsonBlock := extraClient(t, "jsonapp", jsonClientBody)
	e := start(t, envOpts{
		extra: jsonRoutes + jsonBlock,
		si:    standin.Options{DeltaSize: 3, DeltaDelay: time.Millisecond},
	})
	valid := `{"name":"Grace Brewster Murray Hopper","age":85}`
	cases := []struct {
		name, reply string
		ok          bool
	}{
		{"valid", valid, true},
		{"schema failure", `{"name":"Grace","age":"eighty-five"}`, false},
		{"truncated JSON", `{"name":"Grace","age":8`, false},
		{"prose around JSON", `Sure! {"name":"Grace","age":85} hope that helps`, false},
	}
	streams := map[string]func() []byte{
		"route": func() []byte {
			s, _, b := e.raw(http.MethodPost, "/v1/routes/person", []byte(`{"input":"Grace Hopper","stream":true}`), e.auth())
			if s != 200 {
				t.Fatalf("route stream status %d: %s", s, b)
			}
			return b
		},
		"client": func() []byte { return e.streamRaw(t, jsonKey, "Grace Hopper") },
	}
	for via, stream := range streams {
		for _, tc := range cases {
			t.Run(via+"/"+tc.name, func(t *testing.T) {
				e.si.SetReplies([]string{tc.reply})
				raw := stream()
				evs := parseSSE(t, raw)
				deltas := textDeltas(t, evs)
				if tc.ok {
					// One delta holding the whole validated document,
					// released after the upstream's last delta.
					if len(deltas) != 1 || deltas[0] != tc.reply {
						t.Fatalf("text deltas %q, want exactly one holding %q", deltas, tc.reply)
					}
					if lastEvent(evs) != "message_stop" {
						t.Errorf("stream ended with %q", lastEvent(evs))
					}
					return
				}
				if len(deltas) != 0 {
					t.Errorf("invalid JSON leaked %d deltas: %q", len(deltas), deltas)
				}
				if lastEvent(evs) != "error" || !strings.Contains(evs[len(evs)-1].Data, "json-schema") {
					t.Errorf("stream must end with an error naming json-schema:\n%s", raw)
				}
				for _, frag := range []string{`"name"`, `Grace`, `eighty`} {
					if strings.Contains(string(raw), frag) {
						t.Errorf("fragment %q of the refused output is in the stream", frag)
					}
				}
			})
		}
	}
	t.Run("client non-streaming schema failure", func(t *testing.T) {
		e.si.SetReplies([]string{`{"name":"Grace"}`})
		s, msg := e.nonStreamText(t, jsonKey, "x")
		if s != http.StatusBadGateway || !strings.Contains(msg, "json-schema") {
			t.Errorf("status %d %q", s, msg)
		}
	})
}

// near compares dollar amounts to a tenth of a micro-dollar.
func near(a, b float64) bool { d := a - b; return d < 1e-7 && d > -1e-7 }
