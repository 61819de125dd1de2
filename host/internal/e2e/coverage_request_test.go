package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// denyInput makes the default input chain refuse the word FORBIDDEN-<n>.
const denyInput = `
[pipeline]
input = ["deny"]
output = []

[[plugins]]
name = "deny"
builtin = "deny-patterns"
config = { patterns = ["FORBIDDEN-[0-9]+"] }
`

// requestShapes place the word W in every field of a Messages request the
// model reads (README: "What the model reads").
var requestShapes = []struct{ name, fields string }{
	{"user string", `"messages":[{"role":"user","content":"W"}]`},
	{"text block", `"messages":[{"role":"user","content":[{"type":"text","text":"W"}]}]`},
	{"citation in text", `"messages":[{"role":"user","content":[{"type":"text","text":"a","citations":[{"type":"char_location","cited_text":"W","document_index":0,"start_char_index":0,"end_char_index":1}]}]}]`},
	{"document text", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}}]}]`},
	{"document content", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"W"}]}}]}]`},
	{"document title", `"messages":[{"role":"user","content":[{"type":"document","title":"W","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]`},
	{"document context", `"messages":[{"role":"user","content":[{"type":"document","context":"W","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]`},
	{"document url", `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x.example/W.pdf"}}]}]`},
	{"image url", `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x.example/W.png"}}]}]`},
	{"search result", `"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"W"}]}]}]`},
	{"tool result string", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"W"}]}]`},
	{"tool result document", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}}]}]}]`},
	{"tool result search result", `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result","source":"s","title":"W","content":[]}]}]}]`},
	{"system string", `"system":"W","messages":[{"role":"user","content":"hi"}]`},
	{"system blocks", `"system":[{"type":"text","text":"W"}],"messages":[{"role":"user","content":"hi"}]`},
	{"system-role message", `"messages":[{"role":"system","content":"W"},{"role":"user","content":"hi"}]`},
	{"assistant prefill", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"W"}]`},
	{"assistant thinking", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"W","signature":"s"}]}]`},
	{"tool_use input", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"q":"W"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]`},
	{"web search result title", `"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{"query":"q"}},{"type":"web_search_tool_result","tool_use_id":"s","content":[{"type":"web_search_result","url":"u","title":"W","encrypted_content":"e"}]}]}]`},
	{"tool description", `"tools":[{"name":"n","description":"W","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]`},
	{"tool schema", `"tools":[{"name":"n","input_schema":{"type":"object","properties":{"q":{"type":"string","description":"W"}}}}],"messages":[{"role":"user","content":"hi"}]`},
}

func shapeBody(fields, word string) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"max_tokens":64,%s}`, model, strings.ReplaceAll(fields, "W", word)))
}

// TestEveryRequestShapeIsJudged: the word the input chain refuses, placed
// in each field the model reads, is refused before the upstream is
// called, on /v1/messages and on count_tokens (which sends the same text
// to Anthropic), for many hostile callers at once; the same bodies without
// it reach the upstream.
func TestEveryRequestShapeIsJudged(t *testing.T) {
	e := start(t, envOpts{extra: denyInput})
	workers := 4 * runtime.GOMAXPROCS(0)
	type job struct {
		name, path string
		body       []byte
		want       int
	}
	var jobs []job
	for _, s := range requestShapes {
		jobs = append(jobs, job{s.name + "/hostile", "/v1/messages", shapeBody(s.fields, "FORBIDDEN-7"), http.StatusBadRequest})
		jobs = append(jobs, job{s.name + "/benign", "/v1/messages", shapeBody(s.fields, "harmless"), http.StatusOK})
		// count_tokens takes the same body without max_tokens.
		count := func(word string) []byte {
			return []byte(fmt.Sprintf(`{"model":%q,%s}`, model, strings.ReplaceAll(s.fields, "W", word)))
		}
		jobs = append(jobs, job{s.name + "/count/hostile", "/v1/messages/count_tokens", count("FORBIDDEN-7"), http.StatusBadRequest})
		jobs = append(jobs, job{s.name + "/count/benign", "/v1/messages/count_tokens", count("harmless"), http.StatusOK})
	}
	before := e.si.RequestCount()
	ch := make(chan job)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				code, _, body := e.raw("POST", j.path, j.body, e.auth())
				if code != j.want || (j.want == 400 && !strings.Contains(string(body), "deny")) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %d %s", j.name, code, body))
					mu.Unlock()
				}
			}
		}()
	}
	for round := 0; round < 3; round++ {
		for _, j := range jobs {
			ch <- j
		}
	}
	close(ch)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if got, want := e.si.RequestCount()-before, int64(3*2*len(requestShapes)); got != want {
		t.Errorf("upstream saw %d requests, want %d (only the benign ones)", got, want)
	}
	for _, l := range e.auditLines() {
		if strings.Contains(l, `"status":400`) && !strings.Contains(l, `"decided_by":"plugin:deny"`) {
			t.Errorf("refusal not attributed to the plugin: %s", l)
		}
	}
}

// TestJSONMeansOneThing: bodies that two JSON readers could read two ways
// are refused, so what moat judged is what the API reads.
func TestJSONMeansOneThing(t *testing.T) {
	e := start(t, envOpts{extra: denyInput, client: "max_tokens = 100\nmodels = [\"" + model + "\"]"})
	cases := []struct{ name, body string }{
		{"duplicate content", `{"model":"M","max_tokens":5,"messages":[{"role":"user","content":"FORBIDDEN-1","content":"ok"}]}`},
		{"escaped duplicate content", `{"model":"M","max_tokens":5,"messages":[{"role":"user","content":"FORBIDDEN-1","c\u006fntent":"ok"}]}`},
		{"escaped case variant", `{"model":"M","max_tokens":5,"messages":[{"role":"user","content":"ok","\u0043ontent":"FORBIDDEN-1"}]}`},
		{"model list escape", `{"model":"M","Model":"claude-opus-4-1","max_tokens":5,"messages":[{"role":"user","content":"ok"}]}`},
		{"max_tokens cap escape", `{"model":"M","max_tokens":5,"\u004dax_tokens":99999,"messages":[{"role":"user","content":"ok"}]}`},
		{"duplicate max_tokens", `{"model":"M","max_tokens":5,"max_tokens":99999,"messages":[{"role":"user","content":"ok"}]}`},
		{"absurd max_tokens", `{"model":"M","max_tokens":700000000000000,"messages":[{"role":"user","content":"ok"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.si.RequestCount()
			code, _, body := e.raw("POST", "/v1/messages", []byte(strings.ReplaceAll(tc.body, `"M"`, fmt.Sprintf("%q", model))), e.auth())
			if code != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request_error") {
				t.Fatalf("got %d %s, want a 400", code, body)
			}
			if e.si.RequestCount() != before {
				t.Fatal("the upstream was called")
			}
		})
	}
}

// TestJudgeExemptionsOnlyForTrustedKeys: a trusted backend may exempt its
// own system prompt and tools from the input chain; its JWT end users may
// not, and system-role messages follow the client's system policy.
func TestJudgeExemptionsOnlyForTrustedKeys(t *testing.T) {
	secret := "jwt-secret-for-judge-" + strings.Repeat("k3", 16)
	t.Setenv("MOAT_E2E_JWT_SECRET2", secret)
	e := start(t, envOpts{
		client: `trusted = true
judge = ["user"]`,
		extra: denyInput + fmt.Sprintf("[jwt]\nenabled = true\nclient = \"app\"\nalgorithms = [\"HS256\"]\nsecret_env = \"MOAT_E2E_JWT_SECRET2\"\nissuer = %q\naudience = %q\n", lcIssuer, lcAudience),
	})
	sysBody := shapeBody(`"system":"W","messages":[{"role":"system","content":"W too"},{"role":"user","content":"hi"}]`, "FORBIDDEN-2")
	if code, _, body := e.raw("POST", "/v1/messages", sysBody, e.auth()); code != http.StatusOK {
		t.Fatalf("trusted key with judge = [\"user\"]: %d %s, want the system prompt exempt", code, body)
	}
	userBody := shapeBody(`"messages":[{"role":"user","content":"W"}]`, "FORBIDDEN-2")
	if code, _, _ := e.raw("POST", "/v1/messages", userBody, e.auth()); code != http.StatusBadRequest {
		t.Fatalf("trusted key: user text was not judged (%d)", code)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, lcClaims("end-user", time.Now().Add(time.Minute))).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string][]string{"authorization": {"Bearer " + tok}, "anthropic-version": {"2023-06-01"}, "content-type": {"application/json"}}
	code, _, body := e.raw("POST", "/v1/messages", sysBody, hdr)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "deny") {
		t.Fatalf("a JWT end user set an unjudged system prompt: %d %s", code, body)
	}
}

func TestSystemRoleMessagesFollowPolicy(t *testing.T) {
	body := shapeBody(`"messages":[{"role":"system","content":"be terse"},{"role":"user","content":"hi"}]`, "")
	t.Run("client", func(t *testing.T) {
		e := start(t, envOpts{})
		if code, _, b := e.raw("POST", "/v1/messages", body, e.auth()); code != http.StatusOK {
			t.Fatalf("%d %s", code, b)
		}
		var sent struct {
			Messages []struct{ Role string } `json:"messages"`
		}
		if err := json.Unmarshal(e.si.Last().Body, &sent); err != nil || len(sent.Messages) != 2 || sent.Messages[0].Role != "system" {
			t.Fatalf("upstream got %s", e.si.Last().Body)
		}
	})
	t.Run("pin", func(t *testing.T) {
		e := start(t, envOpts{client: "system = \"pin\"\nsystem_prompt = \"server prompt\""})
		code, _, b := e.raw("POST", "/v1/messages", body, e.auth())
		if code != http.StatusBadRequest || !strings.Contains(string(b), "pin") {
			t.Fatalf("%d %s, want a 400 naming the pinned policy", code, b)
		}
	})
}

// TestWrapDoesNotAmplify: a body of many one-letter blocks grows by two
// tags a block, not by a preamble a block.
func TestWrapDoesNotAmplify(t *testing.T) {
	e := start(t, envOpts{client: "wrap_user_input = true"})
	const n = 20000
	var b strings.Builder
	fmt.Fprintf(&b, `{"model":%q,"max_tokens":16,"messages":[{"role":"user","content":[`, model)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"text","text":"a"}`)
	}
	b.WriteString(`]}]}`)
	in := b.String()
	code, _, body := e.raw("POST", "/v1/messages", []byte(in), e.auth())
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	sent := e.si.Last().Body
	if ratio := float64(len(sent)) / float64(len(in)); ratio > 3 {
		t.Fatalf("wrapped body is %.1fx the client's (%d -> %d bytes)", ratio, len(in), len(sent))
	}
	if c := strings.Count(string(sent), "untrusted"); c > 2 {
		t.Fatalf("the wrapping instruction appears %d times for one message", c)
	}
}

// TestBudgetsHoldWithDocuments: a 1 MB text document is estimated by its
// size, not at a flat 2,000 tokens, so five concurrent calls from a user
// with a $0.05 daily budget are refused before the upstream is called
// (before: $0.81 spent in one call, $1.62 with five).
func TestBudgetsHoldWithDocuments(t *testing.T) {
	e := start(t, envOpts{
		client: "trusted = true\nuser_header = \"X-End-User\"",
		extra:  fmt.Sprintf("\n[pricing.%q]\ninput = 3.0\noutput = 15.0\n[[budgets]]\nscope = \"user\"\nperiod = \"day\"\nusd = 0.05\n", model),
	})
	doc := strings.Repeat("lorem ipsum ", (1<<20)/12)
	body := shapeBody(`"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"W"}},{"type":"text","text":"summarise"}]}]`, doc)
	hdr := e.auth()
	hdr["X-End-User"] = []string{"mallory"}
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			codes[i], _, b = e.raw("POST", "/v1/messages", body, hdr)
			if !strings.Contains(string(b), "budget") {
				t.Errorf("call %d: %s, want a budget refusal", i, b)
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		// The worst case exceeds the whole budget: 400, as for a request
		// too large for the budget (a spent budget would be a 429).
		if c != http.StatusBadRequest {
			t.Errorf("call %d: status %d, want 400", i, c)
		}
	}
	for _, l := range e.auditLines() {
		if !strings.Contains(l, `"decided_by":"budget"`) {
			t.Errorf("not refused by the budget: %s", l)
		}
	}
	if n := e.si.RequestCount(); n != 0 {
		t.Fatalf("the upstream was called %d times", n)
	}
}
