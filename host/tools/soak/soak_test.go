package soak

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestShortSoak runs a 5-second soak against moat in this process (against
// Redis when MOAT_TEST_REDIS_ADDR is set) and requires every check to hold
// and every kind of outcome to have happened.
func TestShortSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	var out strings.Builder
	rep, err := Run(context.Background(), Options{
		Duration:    5 * time.Second,
		Concurrency: 20,
		RedisAddr:   os.Getenv("MOAT_TEST_REDIS_ADDR"),
		Dir:         t.TempDir(),
		// Enough of each special kind to see them all in a short run.
		FaultRate: 0.05, LoopRate: 0.03, NoisyRate: 0.15, SpenderRate: 0.15,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(&out)
	t.Log("\n" + out.String())
	if !rep.OK() {
		t.Fatalf("soak found problems")
	}
	for _, o := range []Outcome{OutcomeOK, OutcomeRateLimited, OutcomeLoop, OutcomeFault} {
		if rep.Outcomes[o] == 0 {
			t.Errorf("no request ended as %q", o)
		}
	}
	if rep.AuditLines != rep.Sent || rep.Sent < 50 {
		t.Errorf("%d requests, %d audit lines", rep.Sent, rep.AuditLines)
	}
}

// TestClassify checks the outcome rules on hand-made answers.
func TestClassify(t *testing.T) {
	msg := []byte(`{"type":"message","content":[{"type":"text","text":"hi"}]}`)
	stop := []byte("event: message_start\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	errEv := []byte("event: message_start\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream stream ended unexpectedly\"}}\n\n")
	cut := []byte("event: message_start\ndata: {}\n\n")
	rl := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"}}`)
	budget := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"budget exhausted: user daily budget"}}`)
	loop := []byte(`{"type":"error","error":{"type":"api_error","message":"plugin \"looper\" failed; the request was refused (on_error = \"reject\")"}}`)
	e500 := []byte(`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`)
	cases := []struct {
		name   string
		k      kind
		stream bool
		status int
		body   []byte
		want   Outcome
	}{
		{"normal ok", kindNormal, false, 200, msg, OutcomeOK},
		{"normal stream ok", kindNormal, true, 200, stop, OutcomeOK},
		{"normal stream cut", kindNormal, true, 200, cut, OutcomeUnexpected},
		{"normal stream error", kindNormal, true, 200, errEv, OutcomeUnexpected},
		{"normal 500", kindNormal, false, 500, e500, OutcomeUnexpected},
		{"normal 429", kindNormal, false, 429, rl, OutcomeUnexpected},
		{"normal 200 not a message", kindNormal, false, 200, []byte(`{}`), OutcomeUnexpected},
		{"noisy 429", kindNoisy, false, 429, rl, OutcomeRateLimited},
		{"noisy budget 429", kindNoisy, false, 429, budget, OutcomeUnexpected},
		{"spender budget", kindSpender, true, 429, budget, OutcomeBudget},
		{"spender rate", kindSpender, true, 429, rl, OutcomeUnexpected},
		{"loop 502", kindLoop, false, 502, loop, OutcomeLoop},
		{"loop served", kindLoop, false, 200, msg, OutcomeUnexpected},
		{"loop other 502", kindLoop, false, 502, e500, OutcomeUnexpected},
		{"fault 500", kindFault, false, 500, e500, OutcomeFault},
		{"fault error event", kindFault, true, 200, errEv, OutcomeFault},
		{"fault served", kindFault, true, 200, stop, OutcomeUnexpected},
		{"fault 400", kindFault, false, 400, []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"x"}}`), OutcomeUnexpected},
		{"fault bad body", kindFault, false, 502, []byte("Bad Gateway"), OutcomeUnexpected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, detail := classify(tc.k, tc.stream, tc.status, tc.body); got != tc.want {
				t.Errorf("classify = %q (%s), want %q", got, detail, tc.want)
			}
		})
	}
}
