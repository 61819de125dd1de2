package streamguard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/sdk/abi"
)

// nativeStage is a built-in run natively and incrementally, as the
// default chain configures its output plugins.
func nativeStage(tb testing.TB, name string) Stage {
	tb.Helper()
	_, out, ok := builtin.Native(name)
	if !ok {
		tb.Fatalf("%s built-in missing", name)
	}
	p := &pipeline.Plugin{Stage: &pipeline.NativeStage{PluginName: name, Output: out}, Name: name, OnError: "reject", Streaming: "incremental"}
	return Stage{Plugin: p, Caps: Incremental}
}

// defaultStages are the default chain's incremental output plugins.
func defaultStages(tb testing.TB) []Stage {
	return []Stage{nativeStage(tb, "secret-redact"), nativeStage(tb, "html-escape")}
}

// benchTranscript is a text answer streamed in n deltas of about three
// words, as the stand-in sends one, with some markup for html-escape.
func benchTranscript(n int) []byte {
	var b bytes.Buffer
	ev := func(name, data string) { fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data) }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1024,"output_tokens":1}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	words := strings.Fields("The quick brown fox jumps over the lazy dog while a <b>river</b> runs north of seven quiet stones, and the lamp keeps burning through the night.")
	for i := 0; i < n; i++ {
		piece := words[(3*i)%len(words)] + " " + words[(3*i+1)%len(words)] + " " + words[(3*i+2)%len(words)]
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+piece+`"}}`)
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":240}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return b.Bytes()
}

// discardSink encodes events as the HTTP edge does and drops them.
type discardSink struct{ b []byte }

func (s *discardSink) Event(ev anthropic.Event) error {
	s.b = anthropic.AppendEvent(s.b[:0], ev)
	return nil
}
func (s *discardSink) Fail(ev anthropic.Event) {}
func (s *discardSink) Flush() error            { return nil }

// BenchmarkRelayDefaultChain relays an 80-delta text answer through the
// guard of the default chain's incremental output plugins (secret-redact,
// html-escape) and the key scrubber: burst (all events buffered, judged
// once per maxBatch) and paced (one event per read, judged at each).
func BenchmarkRelayDefaultChain(b *testing.B) {
	in := benchTranscript(80)
	stages := defaultStages(b)
	sc := scrub.New("upstream-secret-key-0123456789")
	for _, mode := range []string{"burst", "paced"} {
		for _, path := range []string{"split", "settled"} {
			b.Run(mode+"/"+path, func(b *testing.B) {
				benchRelay(b, in, stages, sc, mode == "paced", path == "split")
			})
		}
	}
}

// benchRelay relays in through a guard of stages; split forces the full
// split check at every cut (the path before settled).
func benchRelay(b *testing.B, in []byte, stages []Stage, sc *scrub.Scrubber, paced, split bool) {
	b.ReportAllocs()
	sink := &discardSink{}
	for b.Loop() {
		var v pipeline.Verdicts
		g := New(context.Background(), stages, abi.Context{}, &v)
		g.splitAlways = split
		var r io.Reader = bytes.NewReader(in)
		if paced {
			r = &pacedReader{rest: in}
		}
		if out := Relay(context.Background(), r, sink, NewJudge(g, sc, &v), Options{}); out.Err != nil {
			b.Fatal(out.Err)
		}
	}
}
