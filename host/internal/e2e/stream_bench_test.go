package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// benchMoat runs a moat for a benchmark (the harness's start takes a
// *testing.T) in front of si, with one client "app" whose [[clients]] block
// holds clientTOML; extra is appended. It returns moat's URL and the key.
func benchMoat(tb testing.TB, si *standin.Server, upKey, clientTOML, extra string) (string, string) {
	tb.Helper()
	dir := tb.TempDir()
	keyFile := filepath.Join(dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte(upKey+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	cfg := fmt.Sprintf(`environment = "bench"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[upstream]
base_url = %q
api_key_file = %q
[audit]
path = %q
[[clients]]
id = "app"
key_sha256 = %q
%s
%s`, si.URL(), keyFile, filepath.Join(dir, "audit.jsonl"), hash, clientTOML, extra)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: cfgPath,
			Stdout:     io.Discard,
			Logger:     slog.New(slog.DiscardHandler),
			Ready:      func(p, _ string) { ready <- p },
		})
	}()
	select {
	case addr := <-ready:
		tb.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("moat exited with: %v", err)
			}
		})
		return "http://" + addr, key
	case err := <-done:
		cancel()
		tb.Fatalf("moat did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		tb.Fatal("moat did not start in 30s")
	}
	return "", ""
}

// ttfb streams one request and returns the time from sending it to reading
// the first text_delta event, and to reading more than n bytes of text
// (when a guard holding n bytes back can first release); the rest of the
// stream is drained.
func ttfb(tb testing.TB, c *http.Client, url, key string, body []byte, n int) (first, beyond time.Duration) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	text := 0
	for {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"text_delta"`) {
			if first == 0 {
				first = time.Since(t0)
			}
			var ev struct {
				Delta struct {
					Text string `json:"text"`
				} `json:"delta"`
			}
			if jerr := json.Unmarshal([]byte(line[len("data: "):]), &ev); jerr != nil {
				tb.Fatalf("bad event %q: %v", line, jerr)
			}
			text += len(ev.Delta.Text)
			if beyond == 0 && text > n {
				beyond = time.Since(t0)
			}
		}
		if err != nil {
			break
		}
	}
	if first == 0 || beyond == 0 {
		tb.Fatalf("stream had no text_delta or not more than %d bytes of text", n)
	}
	return first, beyond
}

// BenchmarkStreamTTFB measures the time to the first streamed text byte
// through moat against a direct stream from the same stand-in, measured in
// the same loop as the baseline. It reports added-µs (moat minus direct)
// and ratio. Target: at most +1 ms with incremental validators.
func BenchmarkStreamTTFB(b *testing.B) {
	upKey := fakeUpstreamKey("bench")
	si := standin.New(standin.Options{APIKey: upKey, MaxRecorded: -1})
	if err := si.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { si.Close() })
	si.SetReply(strings.Repeat("A plain sentence of the kind a model writes, with nothing to change. ", 12))
	const plugins = `
[[plugins]]
name = "secret-redact"
builtin = "secret-redact"
streaming = "incremental"
hold_back = 256

[[plugins]]
name = "html-escape"
builtin = "html-escape"
streaming = "incremental"
hold_back = 1
`
	configs := []struct {
		name, client string
		holdBack     int
	}{
		{"no-validator", `output = []`, 0},
		{"incremental-html-escape", `output = ["html-escape"]`, 1},
		{"incremental-default-chain", `output = ["secret-redact", "html-escape"]`, 256},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	body := messageBody("hello", 512, true)
	for _, cfg := range configs {
		url, key := benchMoat(b, si, upKey, cfg.client, plugins)
		// Warm both paths (connections, plugin pools).
		for i := 0; i < 5; i++ {
			ttfb(b, client, si.URL(), upKey, body, 0)
			ttfb(b, client, url, key, body, 0)
		}
		b.Run(cfg.name, func(b *testing.B) {
			var direct, directHeld, via time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, dh := ttfb(b, client, si.URL(), upKey, body, cfg.holdBack)
				v, _ := ttfb(b, client, url, key, body, 0)
				direct, directHeld, via = direct+d, directHeld+dh, via+v
			}
			n := float64(b.N)
			b.ReportMetric(float64(direct.Microseconds())/n, "direct-µs")
			b.ReportMetric(float64(via.Microseconds())/n, "moat-µs")
			b.ReportMetric(float64((via-direct).Microseconds())/n, "added-µs")
			b.ReportMetric(float64(via)/float64(direct), "ratio")
			// Against the direct stream's first moment past the hold-back:
			// moat's own cost, without the wait that hold-back implies.
			b.ReportMetric(float64((via-directHeld).Microseconds())/n, "added-vs-holdback-µs")
		})
	}
}
