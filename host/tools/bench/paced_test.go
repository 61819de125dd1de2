package bench

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
)

// slowReader returns one line per Read, after a pause, so that arrival
// times differ by line.
type slowReader struct {
	lines []string
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.lines) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p, r.lines[0])
	r.lines[0] = r.lines[0][n:]
	if r.lines[0] == "" {
		r.lines = r.lines[1:]
	}
	return n, nil
}

func sse(events ...[2]string) []string {
	var out []string
	for _, e := range events {
		out = append(out, "event: "+e[0]+"\n", "data: "+e[1]+"\n", "\n")
	}
	return out
}

func TestReadTextTimeline(t *testing.T) {
	start := `{"type":"message_start","message":{"id":"m"}}`
	text := func(s string) [2]string {
		return [2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + s + `"}}`}
	}
	thinking := [2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm hmm hmm"}}`}
	tool := [2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`}
	stop := [2]string{"message_stop", `{"type":"message_stop"}`}
	tests := []struct {
		name    string
		lines   []string
		bytes   int
		err     error
		textSet bool
	}{
		{"text", sse([2]string{"message_start", start}, text("abcd"), text("ef"), stop), 6, nil, true},
		{"thinking and tool deltas are not text", sse([2]string{"message_start", start}, thinking, tool, text("xy"), stop), 2, nil, true},
		{"no text", sse([2]string{"message_start", start}, thinking, stop), 0, errNoText, false},
		{"cut off", sse([2]string{"message_start", start}, text("abcd")), 4, errIncomplete, true},
		{"ping and CRLF", append([]string{"event: ping\r\n", "data: {}\r\n", "\r\n"}, sse(text("z"), stop)...), 1, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &slowReader{lines: slices.Clone(tc.lines), pause: time.Millisecond}
			tl, err := readTextTimeline(r, time.Now())
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tl.textBytes != tc.bytes {
				t.Errorf("text bytes %d, want %d", tl.textBytes, tc.bytes)
			}
			if tc.textSet && (tl.firstText <= 0 || tl.firstText < tl.firstByte) {
				t.Errorf("first text %v, first byte %v", tl.firstText, tl.firstByte)
			}
			if tc.err == nil && (tl.meanText < tl.firstText) {
				t.Errorf("mean text %v before first text %v", tl.meanText, tl.firstText)
			}
		})
	}
	// The first text comes after the events before it: a first byte that
	// arrives with message_start is not the first text.
	lines := sse([2]string{"message_start", start}, thinking, thinking, text("a"), stop)
	tl, err := readTextTimeline(&slowReader{lines: lines, pause: 5 * time.Millisecond}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if tl.firstText-tl.firstByte < 30*time.Millisecond {
		t.Errorf("first text %v only %v after the first byte", tl.firstText, tl.firstText-tl.firstByte)
	}
}

// TestSampleConfig checks that the paced experiment's copy of config.toml
// loads, keeps the sample's chains and routes, and points at the bench's
// stand-in, audit file and client.
func TestSampleConfig(t *testing.T) {
	root := repoRoot(t)
	work := t.TempDir()
	o := Options{Root: root, Self: []string{"unused"}, Work: work}
	opts, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{opts: &opts, work: work, standinURL: "http://127.0.0.1:1"}
	if err := e.prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	path, err := e.sampleConfig(KeyPacedSample)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("generated config does not load: %v\n%s", err, b)
	}
	sample, err := config.Load(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Pipeline.Input, sample.Pipeline.Input) || !slices.Equal(got.Pipeline.Output, sample.Pipeline.Output) {
		t.Errorf("chains %v / %v, sample has %v / %v", got.Pipeline.Input, got.Pipeline.Output, sample.Pipeline.Input, sample.Pipeline.Output)
	}
	if len(got.Routes) != len(sample.Routes) || len(got.Plugins) != len(sample.Plugins) {
		t.Errorf("%d routes and %d plugins, sample has %d and %d", len(got.Routes), len(got.Plugins), len(sample.Routes), len(sample.Plugins))
	}
	if got.Upstream.BaseURL != e.standinURL || got.Server.Listen != "127.0.0.1:0" || !strings.HasPrefix(got.Audit.Path, work) || !strings.HasPrefix(got.StateFile(), work) {
		t.Errorf("not pointed at the bench: upstream %q listen %q audit %q state %q", got.Upstream.BaseURL, got.Server.Listen, got.Audit.Path, got.StateFile())
	}
	if len(got.Clients) != 1 || got.Clients[0].KeySHA256 != e.clientHash {
		t.Fatalf("clients %+v", got.Clients)
	}
	for _, r := range sample.Routes {
		if !slices.Contains(got.Clients[0].Routes, r.Name) {
			t.Errorf("bench client may not call route %q (routes %v)", r.Name, got.Clients[0].Routes)
		}
	}
}
