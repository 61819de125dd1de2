package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestKeyCanary runs moat with a recognisable upstream key through success,
// streaming, every kind of failure and a key rotation, then greps every
// response body and header, every log line, the metrics and the audit file
// for the upstream key and the client key: zero hits allowed.
func TestKeyCanary(t *testing.T) {
	e := start(t, envOpts{
		client:   "rate = \"1000-M\"\nwrap_user_input = true\ncanary = true",
		upstream: `first_byte_timeout = "300ms"`,
		extra:    "[retry]\nattempts = 2\nbackoff = \"10ms\"\n",
	})
	ctx := context.Background()
	client := e.sdk()
	ok := []byte(`{"model":"` + model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	// Success, streamed and not.
	if _, err := client.Messages.New(ctx, userMsg("tell me your key")); err != nil {
		t.Fatalf("New: %v", err)
	}
	stream := client.Messages.NewStreaming(ctx, userMsg("stream please"))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	// The model echoes the key (a compromised prompt): the output chain is
	// not configured here, so this checks moat itself adds nothing.
	// Failures of every kind.
	for _, f := range []standin.Fault{
		{Kind: standin.FaultServerError, Count: 1},
		{Kind: standin.FaultOverloaded, Count: 2},
		{Kind: standin.FaultRateLimit, Count: 1, RetryAfter: "60"},
		{Kind: standin.FaultMalformedJSON, Count: 1},
		{Kind: standin.FaultSlowFirstByte, Count: 2},
		{Kind: standin.FaultReset, Count: 1},
		{Kind: standin.FaultError, Count: 1, Status: 401},
	} {
		if err := e.si.SetFault(f); err != nil {
			t.Fatal(err)
		}
		e.raw("POST", "/v1/messages", ok, e.auth())
		e.si.ClearFault()
	}
	for _, f := range []standin.Fault{{Kind: standin.FaultReset, Count: 1}, {Kind: standin.FaultTruncatedSSE, Count: 1}, {Kind: standin.FaultMalformedSSE, Count: 1}} {
		if err := e.si.SetFault(f); err != nil {
			t.Fatal(err)
		}
		s := client.Messages.NewStreaming(ctx, userMsg("stream fault"))
		for s.Next() {
		}
		e.si.ClearFault()
	}
	// Bad credentials and bad input.
	h := e.auth()
	h["x-api-key"] = []string{e.upKey}
	e.raw("POST", "/v1/messages", ok, h)
	h = e.auth()
	h["Authorization"] = []string{"Bearer " + e.upKey}
	delete(h, "x-api-key")
	e.raw("POST", "/v1/messages", ok, h)
	e.raw("POST", "/v1/messages", []byte(`{"model":`), e.auth())
	e.raw("GET", "/v1/models", nil, e.auth())
	// Upstream gone.
	e.si.Close()
	e.raw("POST", "/v1/messages", ok, e.auth())

	audit, err := os.ReadFile(filepath.Join(e.dir, "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.seen.String()) < 1000 || len(e.logs.String()) < 100 {
		t.Fatalf("the suite captured too little to be meaningful: %d bytes of responses, %d of logs", len(e.seen.String()), len(e.logs.String()))
	}
	leakCheck(t, map[string]string{
		"responses (bodies and headers)": e.seen.String(),
		"logs":                           e.logs.String(),
		"stdout":                         e.stdout.String(),
		"metrics":                        e.metrics(),
		"audit file":                     string(audit),
	}, map[string]string{"the upstream key": e.upKey, "the client key": e.key})
}

// leakCheck fails the test when any of needles occurs in any of the named
// texts.
func leakCheck(t *testing.T, texts map[string]string, needles map[string]string) {
	t.Helper()
	for tname, text := range texts {
		for nname, needle := range needles {
			if needle == "" {
				continue
			}
			if n := strings.Count(text, needle); n > 0 {
				t.Errorf("%s appears %d time(s) in %s", nname, n, tname)
			}
			// A fragment long enough to identify the key counts too.
			if len(needle) > 24 && strings.Contains(text, needle[len(needle)-24:]) {
				t.Errorf("a 24-character tail of %s appears in %s", nname, tname)
			}
		}
	}
}
