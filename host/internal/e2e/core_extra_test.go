package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestFirstStartLocalKey: with no [[clients]], moat creates a key, prints
// it once with a curl line, stores only its hash, and the key works.
func TestFirstStartLocalKey(t *testing.T) {
	e := start(t, envOpts{noClient: true})
	out := e.stdout.String()
	key := regexp.MustCompile(`moat_[0-9A-Za-z]{40,}`).FindString(out)
	if key == "" || !strings.Contains(out, "curl ") || !strings.Contains(out, "x-api-key: "+key) {
		t.Fatalf("no key and curl line printed:\n%s", out)
	}
	stored, err := os.ReadFile(e.dir + "/.moat-local-keys.toml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), key) || !strings.Contains(string(stored), "key_sha256") {
		t.Fatalf("local key file must hold only the hash:\n%s", stored)
	}
	if fi, _ := os.Stat(e.dir + "/.moat-local-keys.toml"); fi.Mode().Perm() != 0o600 {
		t.Errorf("local key file mode %v, want 0600", fi.Mode().Perm())
	}
	e.key = key
	if status, _, b := e.raw("POST", "/v1/messages", []byte(`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`), e.auth()); status != 200 {
		t.Fatalf("generated key refused: %d %s", status, b)
	}
	if status, _, b := e.raw("POST", "/v1/routes/nope", []byte(`{"input":"x"}`), e.auth()); status != 404 {
		t.Fatalf("route status %d %s", status, b)
	}
}

// TestGracefulShutdown: a stream in flight when moat is told to stop
// finishes; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	e := start(t, envOpts{si: standin.Options{DeltaSize: 8, DeltaDelay: 40 * time.Millisecond}})
	reply := strings.Repeat("slow words ", 12)
	e.si.SetReply(reply)
	body, _ := json.Marshal(map[string]any{"model": model, "max_tokens": 256, "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": "hi"}}})
	req, _ := http.NewRequest("POST", e.url+"/v1/messages", bytes.NewReader(body))
	for k, vs := range e.auth() {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream has started
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut by shutdown: %v", err)
	}
	text, last := sseText(t, append([]byte("event: x\n"), rest...))
	if last != "message_stop" {
		t.Fatalf("stream ended with %q", last)
	}
	if !strings.HasSuffix(reply, text) || len(text) == 0 {
		t.Fatalf("streamed text %q is not the reply's end", text)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("moat did not stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r2, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/healthz", nil)
	if resp, err := http.DefaultClient.Do(r2); err == nil {
		resp.Body.Close()
		t.Fatalf("moat still accepts requests after shutdown: %d", resp.StatusCode)
	}
}
