package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Target keys, in table order.
const (
	KeyDirect      = "direct"
	KeyBare        = "bare"
	KeyMoatNone    = "moat-none"
	KeyMoatDefault = "moat-default"
	KeyMoatUser    = "moat-user"
	KeyPortkey     = "portkey"
	KeyMoatLoop    = "moat-loop"
)

// targetNames label the table's rows.
var targetNames = map[string]string{
	KeyDirect:      "direct to stand-in",
	KeyBare:        "bare reverse proxy",
	KeyMoatNone:    "moat, no plugins",
	KeyMoatDefault: "moat, default chain",
	KeyMoatUser:    "moat, + Go & AS plugins",
	KeyPortkey:     "Portkey gateway",
	KeyMoatLoop:    "moat, + looping plugin",
}

// DefaultInput and DefaultOutput are the default chain the benchmark runs:
// five input sanitizers and two incremental output validators.
var (
	DefaultInput  = []string{"strip-markers", "unicode-clean", "injection-heuristics", "secret-redact", "pii-redact"}
	DefaultOutput = []string{"secret-redact", "html-escape"}
)

// AllBuiltins lists every built-in plugin; the default-chain target loads
// them all (the chain uses some), so its peak RSS is "all built-ins loaded".
var AllBuiltins = []string{
	"strip-markers", "unicode-clean", "injection-heuristics", "length-limit", "pii-redact",
	"secret-redact", "deny-patterns", "json-schema", "html-escape", "prompt-leak", "allow-patterns",
}

// builtinExtra is TOML added to a built-in's [[plugins]] block.
var builtinExtra = map[string]string{
	"secret-redact":  "streaming = \"incremental\"\nhold_back = 256\n",
	"html-escape":    "streaming = \"incremental\"\nhold_back = 1\n",
	"length-limit":   "config = { max_bytes = 200000 }\n",
	"deny-patterns":  "config = { patterns = ['(?i)\\bdrop\\s+table\\b'] }\n",
	"allow-patterns": "config = { patterns = ['(?s).+'] }\n",
	"json-schema":    "config = { schema = { type = \"object\" } }\n",
}

// target is one system under load.
type target struct {
	key    string
	url    string // base URL
	header http.Header
	proc   *Proc // the process whose CPU and RSS are measured
	admin  string
	stop   func()
}

// env holds what every target shares in one run.
type env struct {
	opts       *Options
	work       string
	upKey      string
	upKeyFile  string
	clientKey  string
	clientHash string
	hostileKey string
	hostHash   string
	standinURL string
	goPlugin   pluginFile // user Go plugin; path "" when unavailable
	asPlugin   pluginFile
	loopPlugin pluginFile
}

// pluginFile is a .wasm with its pin, or why it is missing.
type pluginFile struct {
	path, sha256 string
	na           string
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// buildGoPlugin compiles a Go SDK plugin package to wasm.
func buildGoPlugin(ctx context.Context, root, pkg, out string) pluginFile {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return pluginFile{na: fmt.Sprintf("building %s: %v: %s", pkg, err, strings.TrimSpace(string(b)))}
	}
	sum, err := fileSHA256(out)
	if err != nil {
		return pluginFile{na: fmt.Sprintf("reading %s: %v", out, err)}
	}
	return pluginFile{path: out, sha256: sum}
}

// goTool is the go command: $GO, or go from PATH.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// moatConfig writes the config of a moat target and returns its path.
func (e *env) moatConfig(key string) (string, error) { return e.moatConfigAs(key, key) }

// moatConfigAs writes the config of the moat target key under the name
// name (its config file and state directory in the work directory).
func (e *env) moatConfigAs(key, name string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "environment = \"bench\"\n\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\n")
	fmt.Fprintf(&b, "[upstream]\nbase_url = %q\napi_key_file = %q\n\n", e.standinURL, e.upKeyFile)
	if e.opts.Profile {
		fmt.Fprintf(&b, "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"MOAT_BENCH_ADMIN_TOKEN\"\npprof = true\n\n")
	} else {
		fmt.Fprintf(&b, "[admin]\nlisten = \"\"\n\n")
	}
	fmt.Fprintf(&b, "[audit]\npath = %q\ncheckpoint_path = %q\nfsync = %q\n\n", filepath.Join(e.work, name, "audit.jsonl"), filepath.Join(e.work, name, "audit.checkpoint"), e.opts.AuditFSync)
	fmt.Fprintf(&b, "[limits]\nstore = \"memory\"\nstate_path = %q\n\n", filepath.Join(e.work, name, "state.db"))
	fmt.Fprintf(&b, "[pricing.%q]\ninput = 3.0\noutput = 15.0\n\n", Model)
	var input, output []string
	var plugins []string
	switch key {
	case KeyMoatNone:
	case KeyMoatDefault:
		input, output, plugins = DefaultInput, DefaultOutput, AllBuiltins
	case KeyMoatUser, KeyMoatLoop:
		input, output = DefaultInput, DefaultOutput
		plugins = append(append([]string{}, DefaultInput...), "html-escape")
	default:
		return "", fmt.Errorf("no moat config for target %q", key)
	}
	if len(input)+len(output) > 0 {
		fmt.Fprintf(&b, "[pipeline]\ninput = %s\noutput = %s\n\n", tomlList(input), tomlList(output))
	}
	for _, p := range plugins {
		fmt.Fprintf(&b, "[[plugins]]\nname = %q\nbuiltin = %q\n%s\n", p, p, builtinExtra[p])
	}
	clientInput := ""
	if key == KeyMoatUser {
		if e.goPlugin.path != "" {
			fmt.Fprintf(&b, "[[plugins]]\nname = \"topic-guard\"\npath = %q\nsha256 = %q\nconfig = { deny = [\"wire transfer\", \"password reset\"] }\n\n", e.goPlugin.path, e.goPlugin.sha256)
		}
		if e.asPlugin.path != "" {
			fmt.Fprintf(&b, "[[plugins]]\nname = \"deny-words\"\npath = %q\nsha256 = %q\nconfig = { deny = [\"ignore previous instructions\"], mask = [\"hunter2\"] }\n\n", e.asPlugin.path, e.asPlugin.sha256)
		}
		in := append([]string{}, DefaultInput...)
		if e.goPlugin.path != "" {
			in = append(in, "topic-guard")
		}
		if e.asPlugin.path != "" {
			in = append(in, "deny-words")
		}
		clientInput = "input = " + tomlList(in) + "\n"
	}
	fmt.Fprintf(&b, "[[clients]]\nid = \"bench\"\nkey_sha256 = %q\n%s\n", e.clientHash, clientInput)
	if key == KeyMoatLoop {
		fmt.Fprintf(&b, "[[plugins]]\nname = \"loop\"\npath = %q\nsha256 = %q\ntimeout_ms = %d\non_error = \"reject\"\npool_size = 2\n\n", e.loopPlugin.path, e.loopPlugin.sha256, e.opts.LoopTimeout.Milliseconds())
		fmt.Fprintf(&b, "[[clients]]\nid = \"hostile\"\nkey_sha256 = %q\ninput = [\"loop\"]\noutput = []\n\n", e.hostHash)
	}
	path := filepath.Join(e.work, name+".toml")
	if err := os.MkdirAll(filepath.Join(e.work, name), 0o755); err != nil {
		return "", fmt.Errorf("writing config for %s: %w", name, err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("writing config for %s: %w", name, err)
	}
	return path, nil
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

var listeningLine = regexp.MustCompile(`^.*"msg":"moat listening".*$`)

// startMoat starts bin/moat on the target's config.
func (e *env) startMoat(ctx context.Context, key string) (*target, error) {
	if _, err := os.Stat(e.opts.MoatBin); err != nil {
		return nil, fmt.Errorf("moat binary %s not found: run `make build` first", e.opts.MoatBin)
	}
	cfg, err := e.moatConfig(key)
	if err != nil {
		return nil, err
	}
	return e.startMoatConfig(ctx, key, cfg)
}

// startMoatConfig starts bin/moat on the config file cfg, as target key.
func (e *env) startMoatConfig(ctx context.Context, key, cfg string) (*target, error) {
	p, err := StartProc(key, []string{e.opts.MoatBin, "serve", "--config", cfg}, []string{"MOAT_BENCH_ADMIN_TOKEN=" + e.opts.adminToken}, e.work, filepath.Join(e.work, key, "moat.log"))
	if err != nil {
		return nil, err
	}
	line, err := p.WaitLog(ctx, listeningLine, 3*time.Minute)
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	var msg struct {
		Addr  string `json:"addr"`
		Admin string `json:"admin"`
	}
	if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Addr == "" {
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("%s: cannot read its address from %q", key, line)
	}
	h := http.Header{}
	h.Set("X-Api-Key", e.clientKey)
	h.Set("Anthropic-Version", "2023-06-01")
	h.Set("Content-Type", "application/json")
	return &target{key: key, url: "http://" + msg.Addr, header: h, proc: p, admin: msg.Admin, stop: func() { p.Stop(10 * time.Second) }}, nil
}

var roleLine = regexp.MustCompile(regexp.QuoteMeta(readyPrefix) + `(http://\S+)`)

// startRole re-executes the driver as a role process.
func (e *env) startRole(ctx context.Context, key, role string, args ...string) (*Proc, string, error) {
	argv := append(append([]string{}, e.opts.Self...), "--role", role, "--key-file", e.upKeyFile)
	argv = append(argv, args...)
	p, err := StartProc(key, argv, nil, e.work, filepath.Join(e.work, key, role+".log"))
	if err != nil {
		return nil, "", err
	}
	u, err := p.WaitLog(ctx, roleLine, 30*time.Second)
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, "", err
	}
	return p, u, nil
}

// startPortkey runs Portkey's gateway (node) from the pinned npm package,
// installing it with npm ci first when node_modules is missing.
func (e *env) startPortkey(ctx context.Context) (*target, error) {
	dir := e.opts.PortkeyDir
	entry := filepath.Join(dir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
	if _, err := os.Stat(entry); err != nil {
		fmt.Fprintf(e.opts.Progress, "installing Portkey's gateway with npm ci in %s\n", dir)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(ictx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("npm ci in %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc(KeyPortkey, []string{"node", entry, "--port=" + strconv.Itoa(port), "--headless"}, []string{"NODE_ENV=production"}, dir, filepath.Join(e.work, KeyPortkey, "portkey.log"))
	if err != nil {
		return nil, err
	}
	if _, err := p.WaitLog(ctx, regexp.MustCompile(`Ready for connections`), time.Minute); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	h := http.Header{}
	h.Set("X-Portkey-Provider", "anthropic")
	// Portkey appends /messages to the custom host for the Messages API.
	h.Set("X-Portkey-Custom-Host", e.standinURL+"/v1")
	h.Set("Authorization", "Bearer "+e.upKey)
	h.Set("X-Api-Key", e.upKey)
	h.Set("Anthropic-Version", "2023-06-01")
	h.Set("Content-Type", "application/json")
	return &target{key: KeyPortkey, url: fmt.Sprintf("http://127.0.0.1:%d", port), header: h, proc: p, stop: func() { p.Stop(5 * time.Second) }}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
