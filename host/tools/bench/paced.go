package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The paced-upstream experiment: a second stand-in sends its text deltas
// PacedDelay apart, as a model generating does, and each target streams
// the reply. It reports when the first text_delta reaches the client (not
// the first byte, which moat may send before any text) and how far behind
// the stand-in the released text runs on average: a guard that holds text
// back to validate it shows up as lag, which the back-to-back cells above
// cannot show.

// Paced-experiment target keys, in table order.
const (
	KeyPacedDirect  = "paced-direct"
	KeyPacedNone    = "paced-moat-none"
	KeyPacedDefault = "paced-moat-default"
	KeyPacedSample  = "paced-moat-sample"
	KeyPacedRoute   = "paced-moat-sample-route"
)

var pacedNames = map[string]string{
	KeyPacedDirect:  "direct to stand-in",
	KeyPacedNone:    "moat, no plugins",
	KeyPacedDefault: "moat, default chain",
	KeyPacedSample:  "moat, config.toml [pipeline] chains",
	KeyPacedRoute:   "moat, config.toml route \"summarize\"",
}

// PacedResult is the paced-upstream experiment.
type PacedResult struct {
	NA string
	// Delay is the stand-in's pause between deltas; Concurrency the
	// streams in flight per target.
	Delay       time.Duration
	Concurrency int
	Rows        []PacedRow
}

// PacedRow is one target of the paced experiment.
type PacedRow struct {
	Key, Name string
	NA        string
	Result    *LoadResult
}

// pacedTextRequest streams spec.Body and records, from the SSE events, the
// time of the first text_delta and the byte-weighted mean arrival time of
// the text (the time at which a byte of the reply arrives, on average).
func pacedTextRequest(ctx context.Context, client *http.Client, spec *LoadSpec) (s sample) {
	s.start = time.Now()
	defer func() { s.end = time.Now() }()
	resp := send(ctx, client, spec, &s)
	if resp == nil {
		return s
	}
	defer resp.Body.Close()
	tl, err := readTextTimeline(resp.Body, s.start)
	if err != nil {
		s.err = err
		return s
	}
	s.ttfb, s.firstText, s.meanText = tl.firstByte, tl.firstText, tl.meanText
	return s
}

// textTimeline is what readTextTimeline measured, each as a time since
// the request started.
type textTimeline struct {
	firstByte, firstText, meanText time.Duration
	textBytes                      int
}

// errNoText is a stream that ended without any text_delta.
var errNoText = errors.New("stream carried no text_delta")

// readTextTimeline reads an SSE stream to its end and times its text.
func readTextTimeline(r io.Reader, start time.Time) (textTimeline, error) {
	var tl textTimeline
	br := bufio.NewReaderSize(r, 32<<10)
	var event string
	var weighted float64 // sum of bytes x arrival time
	sawStop := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && tl.firstByte == 0 {
			tl.firstByte = time.Since(start)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return tl, errors.New("reading stream: SSE line over 32 KiB")
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data := bytes.TrimSpace(line[len("data:"):])
			switch event {
			case "message_stop":
				sawStop = true
			case "content_block_delta":
				var d struct {
					Delta struct {
						Type string `json:"type"`
						Text string `json:"text"`
					} `json:"delta"`
				}
				if json.Unmarshal(data, &d) == nil && d.Delta.Type == "text_delta" && d.Delta.Text != "" {
					now := time.Since(start)
					if tl.textBytes == 0 {
						tl.firstText = now
					}
					tl.textBytes += len(d.Delta.Text)
					weighted += float64(len(d.Delta.Text)) * float64(now)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return tl, fmt.Errorf("reading stream: %w", err)
		}
	}
	if !sawStop {
		return tl, errIncomplete
	}
	if tl.textBytes == 0 {
		return tl, errNoText
	}
	tl.meanText = time.Duration(weighted / float64(tl.textBytes))
	return tl, nil
}

// meanDuration is the mean of ds, or 0.
func meanDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// routeBody is the body of a streaming call of a route with Prompt as its
// input.
func routeBody() []byte {
	b, err := json.Marshal(map[string]any{"input": Prompt(), "stream": true})
	if err != nil {
		panic("bench: encoding the route body: " + err.Error()) // a fixed literal: cannot fail
	}
	return b
}

// sampleConfig turns the repository's config.toml into a bench target's
// config: its own [server], [upstream], [admin] and [audit] replace the
// sample's, [limits] keeps the sample's rates with the state file moved to
// work, and the bench client is added, allowed to call every route.
func (e *env) sampleConfig(name string) (string, error) {
	src, err := os.ReadFile(filepath.Join(e.opts.Root, "config.toml"))
	if err != nil {
		return "", fmt.Errorf("reading the sample config: %w", err)
	}
	dir := filepath.Join(e.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing config for %s: %w", name, err)
	}
	var b strings.Builder
	var routes []string
	drop := false
	header := ""
	for _, line := range strings.SplitAfter(string(src), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			header = t
			if i := strings.Index(header, "#"); i >= 0 {
				header = strings.TrimSpace(header[:i])
			}
			switch header {
			case "[server]", "[upstream]", "[admin]", "[audit]", "[[clients]]":
				drop = true
				continue
			}
			drop = false
			b.WriteString(line)
			if header == "[limits]" {
				fmt.Fprintf(&b, "state_path = %q\n", filepath.Join(dir, "state.db"))
			}
			continue
		}
		if drop {
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(k) == "state_path" {
			continue // replaced above
		}
		if k, v, ok := strings.Cut(t, "="); ok && header == "[[routes]]" && strings.TrimSpace(k) == "name" {
			var n string
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%q", &n); err == nil {
				routes = append(routes, n)
			}
		}
		b.WriteString(line)
	}
	fmt.Fprintf(&b, "\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\n")
	fmt.Fprintf(&b, "[upstream]\nbase_url = %q\napi_key_file = %q\n\n", e.standinURL, e.upKeyFile)
	fmt.Fprintf(&b, "[admin]\nlisten = \"\"\n\n")
	fmt.Fprintf(&b, "[audit]\npath = %q\ncheckpoint_path = %q\nfsync = %q\n\n", filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "audit.checkpoint"), e.opts.AuditFSync)
	fmt.Fprintf(&b, "[[clients]]\nid = \"bench\"\nkey_sha256 = %q\nroutes = %s\n", e.clientHash, tomlList(routes))
	path := filepath.Join(e.work, name+".toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("writing config for %s: %w", name, err)
	}
	return path, nil
}
