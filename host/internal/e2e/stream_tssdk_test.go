package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// tssdkDir is the npm project holding the official TypeScript SDK, pinned
// in its package.json and package-lock.json and installed by `npm ci`.
const tssdkDir = "tssdk"

// tsResult is one case's outcome as stream.mjs reports it.
type tsResult struct {
	Name       string `json:"name"`
	OK         bool   `json:"ok"`
	Text       string `json:"text"`
	FinalText  string `json:"final_text"`
	StopReason string `json:"stop_reason"`
	Error      *struct {
		Class    string `json:"class"`
		APIError bool   `json:"api_error"`
		Type     string `json:"type"`
		Message  string `json:"message"`
	} `json:"error"`
}

type tsCase struct {
	Name   string `json:"name"`
	Client string `json:"client,omitempty"`
	Prompt string `json:"prompt"`
}

// runTSSDK runs tssdk/stream.mjs against moat and returns its results by
// case name, after checking the SDK version is the pinned one.
func runTSSDK(t *testing.T, env []string, cases []tsCase) map[string]tsResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needTool(t, "node is not installed (the TypeScript SDK test needs Node.js 20+)")
	}
	if _, err := os.Stat(filepath.Join(tssdkDir, "node_modules", "@anthropic-ai", "sdk", "package.json")); err != nil {
		needTool(t, "the TypeScript SDK is not installed: run `cd host/internal/e2e/tssdk && npm ci`")
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(tssdkDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("tssdk/package.json: %v", err)
	}
	pinned := pkg.Dependencies["@anthropic-ai/sdk"]
	if pinned == "" || strings.ContainsAny(pinned, "^~*<>= x") {
		t.Fatalf("tssdk/package.json must pin @anthropic-ai/sdk to an exact version, got %q", pinned)
	}
	cj, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "stream.mjs")
	cmd.Dir = tssdkDir
	cmd.Env = append(os.Environ(), append(env, "MOAT_MODEL="+model, "MOAT_CASES="+string(cj))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node stream.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var out struct {
		SDKVersion string     `json:"sdk_version"`
		Results    []tsResult `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("stream.mjs printed no JSON: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if out.SDKVersion != pinned {
		t.Fatalf("node loaded @anthropic-ai/sdk %s, package.json pins %s (run npm ci)", out.SDKVersion, pinned)
	}
	t.Logf("@anthropic-ai/sdk %s", out.SDKVersion)
	res := map[string]tsResult{}
	for _, r := range out.Results {
		res[r.Name] = r
	}
	if len(res) != len(cases) {
		t.Fatalf("got %d results for %d cases: %s", len(res), len(cases), stdout.String())
	}
	return res
}

// TestTypeScriptSDKStreaming streams through moat with the official
// TypeScript SDK (client.messages.stream + finalMessage), with and without
// output validators. The stand-in echoes the prompt in 3-byte deltas, so
// every payload is split across deltas.
func TestTypeScriptSDKStreaming(t *testing.T) {
	denyKey, denyBlock := extraClient(t, "deny-only", `output = ["deny"]`)
	plainKey, plainBlock := extraClient(t, "plain", `output = []`)
	e := start(t, envOpts{
		client: `output = ["html-escape", "secret-redact"]`,
		extra:  validatorPlugins + denyBlock + plainBlock,
		// Paced like a model: the guard judges what has arrived whenever
		// the upstream has nothing more buffered, so text is released
		// before the match arrives.
		si: standin.Options{DeltaSize: 3, DeltaDelay: 2 * time.Millisecond},
	})
	secret := "sk-" + "ant-" + "api03-" + strings.Repeat("Tz8", 14) + "-qqAA"
	xss := `look: <script>alert("x")</script><img src=x onerror=alert(1)> & done`
	secretPrompt := "the key is " + secret + " keep it safe"
	before := strings.Repeat("calm words ", 10)
	denyPrompt := before + "FORBIDDEN-1234 " + strings.Repeat("tail ", 8)
	plainPrompt := `plain <b>bold</b> "quoted" text`
	cases := []tsCase{
		{Name: "xss", Prompt: xss},
		{Name: "secret", Prompt: secretPrompt},
		{Name: "benign", Prompt: "nothing to change here"},
		{Name: "reject", Client: "deny-only", Prompt: denyPrompt},
		{Name: "plain", Client: "plain", Prompt: plainPrompt},
	}
	// What the chain makes of each whole reply: the same clients, not
	// streaming.
	oracle := func(key, prompt string) string {
		status, text := e.nonStreamText(t, key, prompt)
		if status != 200 {
			t.Fatalf("non-streaming oracle for %q: status %d: %s", prompt, status, text)
		}
		return text
	}
	wantXSS := oracle(e.key, xss)
	if wantXSS != html.EscapeString(standin.EchoPrefix+xss) {
		t.Fatalf("non-streaming chain gave %q", wantXSS)
	}
	wantSecret := oracle(e.key, secretPrompt)
	if strings.Contains(wantSecret, secret[:20]) || !strings.Contains(wantSecret, "[REDACTED:") {
		t.Fatalf("non-streaming chain did not redact: %q", wantSecret)
	}

	keys, _ := json.Marshal(map[string]string{"deny-only": denyKey, "plain": plainKey})
	res := runTSSDK(t, []string{"MOAT_URL=" + e.url, "MOAT_KEY=" + e.key, "MOAT_KEYS=" + string(keys)}, cases)

	t.Run("xss split across deltas is escaped", func(t *testing.T) {
		r := res["xss"]
		if !r.OK {
			t.Fatalf("stream failed: %+v", r.Error)
		}
		if r.Text != wantXSS || r.FinalText != wantXSS {
			t.Errorf("text %q / final %q, want %q", r.Text, r.FinalText, wantXSS)
		}
		if strings.Contains(r.Text, "<script") || strings.Contains(r.Text, "<img") {
			t.Errorf("raw markup reached the SDK: %q", r.Text)
		}
	})
	t.Run("secret split across deltas is redacted", func(t *testing.T) {
		r := res["secret"]
		if !r.OK {
			t.Fatalf("stream failed: %+v", r.Error)
		}
		if r.Text != wantSecret || r.FinalText != wantSecret {
			t.Errorf("text %q / final %q, want %q", r.Text, r.FinalText, wantSecret)
		}
		for _, frag := range []string{secret, secret[:16], secret[10:30], secret[len(secret)-20:]} {
			if strings.Contains(r.Text, frag) {
				t.Errorf("secret fragment %q reached the SDK", frag)
			}
		}
	})
	t.Run("validated benign stream is unchanged", func(t *testing.T) {
		r := res["benign"]
		want := standin.EchoPrefix + "nothing to change here"
		if !r.OK || r.Text != want || r.FinalText != want || r.StopReason != "end_turn" {
			t.Errorf("got %+v, want text %q", r, want)
		}
	})
	t.Run("reject mid-stream is an SDK error", func(t *testing.T) {
		r := res["reject"]
		if r.OK {
			t.Fatalf("the SDK saw a complete message: %q", r.FinalText)
		}
		if r.Error == nil || !r.Error.APIError || !strings.Contains(r.Error.Message, "deny") {
			t.Fatalf("error = %+v, want an APIError naming the plugin", r.Error)
		}
		t.Logf("SDK error after %d bytes of text: %s: %s", len(r.Text), r.Error.Class, r.Error.Message)
		full := standin.EchoPrefix + denyPrompt
		cleanPrefix := full[:strings.Index(full, "FORBIDDEN")]
		if !strings.HasPrefix(cleanPrefix, r.Text) {
			t.Errorf("released text %q is not a prefix of the text before the match", r.Text)
		}
		if r.Text == "" {
			t.Errorf("nothing streamed before the reject: the test no longer exercises a mid-stream reject")
		}
		if strings.Contains(r.Text, "FORBIDDEN") || strings.Contains(r.Text, "tail") {
			t.Errorf("text at or after the match reached the SDK: %q", r.Text)
		}
	})
	t.Run("no validators: text equals the stand-in's reply", func(t *testing.T) {
		r := res["plain"]
		want := standin.EchoPrefix + plainPrompt
		if !r.OK || r.Text != want || r.FinalText != want {
			t.Errorf("got %+v, want %q", r, want)
		}
	})
}
