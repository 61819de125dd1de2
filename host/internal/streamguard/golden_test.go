package streamguard

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/sdk/abi"
)

var update = flag.Bool("update", false, "rewrite the golden client transcripts in testdata/")

// testCanary is the canary of the canary cases.
const testCanary = "moat-canary-0123456789abcdef"

// redactor is the secret-redact built-in, run natively and incrementally.
func redactor(t *testing.T) Stage {
	t.Helper()
	_, out, ok := builtin.Native("secret-redact")
	if !ok {
		t.Fatal("secret-redact built-in missing")
	}
	p := &pipeline.Plugin{Stage: &pipeline.NativeStage{PluginName: "secret-redact", Output: out}, Name: "secret-redact", OnError: "reject", Streaming: "incremental"}
	return Stage{Plugin: p, Caps: Incremental}
}

// forbidden is a test stage refusing text with the word "forbidden",
// holding back a suffix that could still begin it.
type forbidden struct{}

func (forbidden) Name() string { return "forbid-words" }

func (forbidden) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	if strings.Contains(req.Text, "forbidden") {
		return abi.Verdict{Action: abi.Reject, Reason: "the text says a forbidden word"}, nil
	}
	h := min(len(req.Text), len("forbidden")-1)
	return abi.Verdict{Action: abi.Allow, Hold: &h}, nil
}

func rejecter() Stage {
	return Stage{Plugin: &pipeline.Plugin{Stage: forbidden{}, Name: "forbid-words", Streaming: "incremental"}, Caps: Incremental}
}

// maskHex is a test stage (a redactor) masking runs of 16 hex digits.
type maskHex struct{}

func (maskHex) Name() string { return "mask-hex" }

var hexRun = regexp.MustCompile(`[0-9a-f]{16}`)

func (maskHex) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	out := hexRun.ReplaceAllString(req.Text, "****")
	if out == req.Text {
		h := min(len(req.Text), 15)
		return abi.Verdict{Action: abi.Allow, Hold: &h}, nil
	}
	h := 0
	return abi.Verdict{Action: abi.Modify, Text: out, Hold: &h}, nil
}

func hexMasker() Stage {
	return Stage{Plugin: &pipeline.Plugin{Stage: maskHex{}, Name: "mask-hex", Streaming: "incremental"}, Caps: Incremental}
}

// failureEvent is the error event the client gets for a stream's
// failure, as the HTTP edge maps these kinds (gateway's fault table): the
// upstream's own type for its error event, api_error for the rest, and
// the message cleaned.
func failureEvent(err error, g *Guard, sc *scrub.Scrubber) *anthropic.Event {
	if err == nil {
		return nil
	}
	f := fault.From(err)
	typ := anthropic.TypeAPI
	if f.Kind == fault.UpstreamError && anthropic.KnownType(f.Type) {
		typ = f.Type
	}
	ev := anthropic.ErrorEvent(typ, CleanMessage(f.Msg, f.Quoted, g, sc))
	return &ev
}

// pacedReader returns one SSE event per Read, as a paced upstream
// delivers them, so the guard judges (and may release) after each.
type pacedReader struct{ rest []byte }

func (r *pacedReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		return 0, io.EOF
	}
	n := bytes.Index(r.rest, []byte("\n\n")) + 2
	if n < 2 {
		n = len(r.rest)
	}
	n = copy(p, r.rest[:n])
	r.rest = r.rest[n:]
	return n, nil
}

// bufSink is the client's side of the stream: the exact bytes it reads.
type bufSink struct{ b []byte }

func (s *bufSink) Event(ev anthropic.Event) error { s.b = anthropic.AppendEvent(s.b, ev); return nil }
func (s *bufSink) Fail(ev anthropic.Event)        { s.b = anthropic.AppendEvent(s.b, ev) }
func (s *bufSink) Flush() error                   { return nil }

// TestGoldenTranscripts relays each upstream transcript in testdata/
// (NAME.upstream.sse) through the guard and compares what the client
// receives with NAME.client.sse; go test -update rewrites those.
func TestGoldenTranscripts(t *testing.T) {
	cases := []struct {
		name   string
		stages func(t *testing.T) []Stage
	}{
		{"plain_text", nil},
		{"redact_split", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"reject_midstream", func(t *testing.T) []Stage { return []Stage{rejecter()} }},
		{"canary_split", func(t *testing.T) []Stage { return []Stage{Canary(testCanary)} }},
		{"tool_input", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"thinking_signature", func(t *testing.T) []Stage { return []Stage{redactor(t), Canary(testCanary)} }},
		{"upstream_error", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"unknown_event", nil},
		{"unexpected_end", nil},
		{"bare_cr", nil},
		{"key_split", nil},
		{"canary_behind_redactor", func(t *testing.T) []Stage { return []Stage{hexMasker(), Canary(testCanary)} }},
		{"thinking_modified", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"thinking_modified_live", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"buffered_stage", func(t *testing.T) []Stage { return []Stage{{Plugin: hexMasker().Plugin}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tc.name+".upstream.sse"))
			if err != nil {
				t.Fatal(err)
			}
			// Transcripts name a key-shaped string by a placeholder, built
			// here at run time, so that no key-like literal sits in the tree.
			in = bytes.ReplaceAll(in, []byte("{{ANTHROPIC_KEY}}"), []byte("sk-"+"ant-"+"api03-"+strings.Repeat("TESTONLYfake", 3)))
			var stages []Stage
			if tc.stages != nil {
				stages = tc.stages(t)
			}
			got := relayTranscript(stages, in)
			golden := filepath.Join("testdata", tc.name+".client.sse")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("client transcript differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// relayTranscript relays upstream through a guard of stages (and the
// scrubber) and ends the stream as the exchange does: what the client
// reads.
func relayTranscript(stages []Stage, upstream []byte) []byte {
	var v pipeline.Verdicts
	g := New(context.Background(), stages, abi.Context{}, &v)
	sc := scrub.New("upstream-secret-key-0123456789")
	sink := &bufSink{}
	out := Relay(context.Background(), &pacedReader{rest: upstream}, sink, NewJudge(g, sc, &v), Options{})
	Finish(sink, failureEvent(out.Err, g, sc))
	return fmt.Appendf(sink.b, "")
}
