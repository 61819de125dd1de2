package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/tools/standin"
	"github.com/moat-gateway/moat/sdk/abi"
)

// claudeCodeDir is the npm project pinning Claude Code (installed by
// `make test-deps`).
const claudeCodeDir = "claudecode"

// claudeCodeEnv turns off everything Claude Code would fetch besides the
// API: telemetry, error reporting, the auto-updater, feedback surveys and
// other nonessential traffic. The trap proxy catches anything left.
var claudeCodeEnv = []string{
	"DISABLE_TELEMETRY=1",
	"DISABLE_ERROR_REPORTING=1",
	"DISABLE_AUTOUPDATER=1",
	"DISABLE_BUG_COMMAND=1",
	"DISABLE_NON_ESSENTIAL_MODEL_CALLS=1",
	"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	"CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY=1",
	"CLAUDE_CODE_DISABLE_TERMINAL_TITLE=1",
}

// trapProxy is an HTTP proxy on loopback that refuses and records every
// request: Claude Code's HTTPS_PROXY points at it, so any call to the
// internet is caught (and fails) instead of leaving the machine.
type trapProxy struct {
	mu   sync.Mutex
	seen []string
	srv  *http.Server
	addr string
}

func startTrapProxy(t *testing.T) *trapProxy {
	t.Helper()
	p := &trapProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.Host+r.URL.Path)
		p.mu.Unlock()
		http.Error(w, "moat e2e: no internet", http.StatusForbidden)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *trapProxy) attempts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// claudeBinary returns the pinned Claude Code's native binary.
func claudeBinary(t *testing.T) string {
	t.Helper()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(claudeCodeDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pinned := pkg.Dependencies["@anthropic-ai/claude-code"]
	if pinned == "" || strings.ContainsAny(pinned, "^~*<>= x") {
		t.Fatalf("claudecode/package.json must pin @anthropic-ai/claude-code exactly, got %q", pinned)
	}
	bin, err := filepath.Abs(filepath.Join(claudeCodeDir, "node_modules", "@anthropic-ai", "claude-code", "bin", "claude.exe"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		needTool(t, "Claude Code is not installed: run `make test-deps` (npm ci in host/internal/e2e/claudecode)")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), pinned+" ") {
		t.Fatalf("claude --version = %q (%v), package.json pins %s (run npm ci)", out, err, pinned)
	}
	return bin
}

// runClaude runs `claude -p PROMPT --output-format FORMAT` against moat in
// a fresh home and working directory and returns its stdout.
func runClaude(t *testing.T, bin string, e *env, proxy *trapProxy, format, prompt string) (string, error) {
	t.Helper()
	home := t.TempDir()
	work := t.TempDir()
	args := []string{"-p", prompt, "--output-format", format}
	if format == "stream-json" {
		args = append(args, "--verbose")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = work
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TERM=dumb",
		"ANTHROPIC_BASE_URL=" + e.url,
		"ANTHROPIC_API_KEY=" + e.key,
		"HTTPS_PROXY=http://" + proxy.addr,
		"HTTP_PROXY=http://" + proxy.addr,
		"NO_PROXY=127.0.0.1,localhost",
	}
	cmd.Env = append(env, claudeCodeEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Logf("claude stderr:\n%s", stderr.String())
	}
	return stdout.String(), err
}

// TestClaudeCode runs the pinned Claude Code through moat on the sample
// config (its default chains, plugins and limits) with one client, against
// the stand-in, in both print formats: it must print the stand-in's answer
// and exit 0, reach nothing but moat, and trip none of the sample's input
// plugins with its own scaffolding.
func TestClaudeCode(t *testing.T) {
	bin := claudeBinary(t)
	e := startSample(t, "", standin.Options{})
	const answer = "Hello from the stand-in, relayed by moat."
	e.si.SetReply(answer)
	proxy := startTrapProxy(t)

	t.Run("json", func(t *testing.T) {
		out, err := runClaude(t, bin, e, proxy, "json", "say hi")
		if err != nil {
			t.Fatalf("claude exited with %v\nstdout:\n%s\nmoat logs:\n%s", err, out, tail(e.logs.String(), 4000))
		}
		var res struct {
			Result  string `json:"result"`
			IsError bool   `json:"is_error"`
			Subtype string `json:"subtype"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
			t.Fatalf("stdout is not one JSON result: %v\n%s", err, out)
		}
		if res.IsError || res.Result != answer {
			t.Fatalf("result %q (is_error %v, %s), want %q", res.Result, res.IsError, res.Subtype, answer)
		}
	})
	t.Run("stream-json", func(t *testing.T) {
		out, err := runClaude(t, bin, e, proxy, "stream-json", "say hi")
		if err != nil {
			t.Fatalf("claude exited with %v\nstdout:\n%s", err, out)
		}
		var result string
		var assistantText strings.Builder
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev struct {
				Type    string `json:"type"`
				Result  string `json:"result"`
				IsError bool   `json:"is_error"`
				Message struct {
					Content []struct {
						Type string `json:"type"`
						Text string `json:"text"`
					} `json:"content"`
				} `json:"message"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("a stream-json line is not JSON: %v: %s", err, sc.Text())
			}
			switch ev.Type {
			case "assistant":
				for _, c := range ev.Message.Content {
					if c.Type == "text" {
						assistantText.WriteString(c.Text)
					}
				}
			case "result":
				if ev.IsError {
					t.Fatalf("result is an error: %s", sc.Text())
				}
				result = ev.Result
			}
		}
		if result != answer || assistantText.String() != answer {
			t.Fatalf("result %q, assistant text %q, want %q", result, assistantText.String(), answer)
		}
	})

	if a := proxy.attempts(); len(a) > 0 {
		t.Errorf("Claude Code tried to reach the internet: %v", a)
	}
	// Every call Claude Code made went through moat, and none was refused:
	// its system reminders, tool definitions and session metadata passed
	// the sample's input chain.
	lines := e.auditLines()
	if len(lines) == 0 {
		t.Fatal("no audit records")
	}
	for _, l := range lines {
		var a struct {
			Status   int    `json:"status"`
			Decision string `json:"decision"`
			Endpoint string `json:"endpoint"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if a.Status != 200 || a.Decision != "allow" {
			t.Errorf("Claude Code call refused: %s %d %s: %s", a.Endpoint, a.Status, a.Decision, a.Error)
		}
	}
	for _, r := range e.si.Requests() {
		if r.Path == "/v1/messages" && r.RawQuery != "beta=true" {
			t.Errorf("?beta=true not relayed: %q", r.RawQuery)
		}
		if r.Header.Get("anthropic-beta") == "" {
			t.Errorf("Claude Code's betas not relayed")
		}
	}
	t.Logf("Claude Code made %d calls through moat", len(lines))
	measureAgentTraffic(t, e.si.Requests())
}

// measureAgentTraffic runs the injection detectors in reject mode (as the
// sample's routes run them) over every text Claude Code sent, as the
// upstream received it, and logs how many each would have refused: the
// false positives on real agent traffic that made the sample flag, not
// reject, on /v1/messages.
func measureAgentTraffic(t *testing.T, reqs []standin.Recorded) {
	t.Helper()
	detectors := []struct {
		name, config string
	}{
		{"injection-heuristics", `{}`},
		{"injection-classifier", `{}`},
	}
	texts, calls := 0, 0
	rejected := make([]int, len(detectors))
	models := map[string]bool{}
	for _, r := range reqs {
		if r.Path != "/v1/messages" {
			continue
		}
		req, err := anthropic.DecodeRequest(r.Body, anthropic.Options{})
		if err != nil {
			t.Fatalf("decoding Claude Code's request: %v", err)
		}
		calls++
		models[req.Model] = true
		_ = req.EachText(func(seg anthropic.Segment, text string) (string, error) {
			texts++
			for i, d := range detectors {
				in, _, _ := builtin.Native(d.name)
				v := in(abi.Request{Phase: abi.PhaseInput, Text: text, Config: json.RawMessage(d.config),
					Context: abi.Context{Kind: seg.Kind, Role: seg.Role, Path: seg.Path}})
				if v.Action == abi.Reject {
					rejected[i]++
					t.Logf("%s would reject %s (%d bytes): %s", d.name, seg.Path, len(text), v.Reason)
				}
			}
			return text, nil
		})
	}
	if calls == 0 {
		t.Fatal("the stand-in saw no /v1/messages call")
	}
	for i, d := range detectors {
		t.Logf("agent traffic: %s in reject mode would refuse %d of %d texts in %d calls (models %v)", d.name, rejected[i], texts, calls, sortedKeys(models))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
