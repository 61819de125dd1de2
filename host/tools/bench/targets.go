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

	"github.com/moat-gateway/moat/host/internal/builtin"
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
// five input sanitizers and two incremental output validators. It holds
// every stage of config.toml's [pipeline] (TestDefaultChainCoversSample),
// configured as there, and pii-redact and html-escape besides.
var (
	DefaultInput  = []string{"strip-markers", "unicode-clean", "injection-classifier", "secret-redact", "pii-redact"}
	DefaultOutput = []string{"secret-redact", "html-escape"}
)

// AllBuiltins lists every built-in plugin; the default-chain target loads
// them all (the chain uses some), so its peak RSS is "all built-ins loaded".
var AllBuiltins = builtin.Names()

// builtinExtra is TOML added to a built-in's [[plugins]] block.
var builtinExtra = map[string]string{
	"secret-redact":  "streaming = \"incremental\"\nhold_back = 256\n",
	"html-escape":    "streaming = \"incremental\"\nhold_back = 1\n",
	"length-limit":   "config = { max_bytes = 200000 }\n",
	"deny-patterns":  "config = { patterns = ['(?i)\\bdrop\\s+table\\b'] }\n",
	"allow-patterns": "config = { patterns = ['(?s).+'] }\n",
	"json-schema":    "config = { schema = { type = \"object\" } }\n",
	// As config.toml: the learned detector fused with the rules, flagging
	// on /v1/messages.
	"injection-classifier": "config = { action = \"flag\", heuristics = 1.0 }\n",
	"markdown-links":       "streaming = \"incremental\"\nhold_back = 128\nconfig = { allow_domains = [\"docs.anthropic.com\"] }\n",
}

// messagesHeader is the header of a Messages API call made with key.
func messagesHeader(key string) http.Header {
	h := http.Header{}
	h.Set("X-Api-Key", key)
	h.Set("Anthropic-Version", "2023-06-01")
	h.Set("Content-Type", "application/json")
	return h
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
	goPlugin   pluginFile // the user Go plugin; path "" when unavailable
	asPlugin   pluginFile // the user AssemblyScript plugin
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

// The user plugins: a Go and an AssemblyScript plugin exactly as
// `moat plugin new` writes them (the scaffold's check: reject a text that
// contains a denied phrase, ASCII case ignored), each with its own deny list.
const (
	userGoName = "user-go"
	userASName = "user-as"
)

// userPluginConfig is each user plugin's [[plugins]] config.
var userPluginConfig = map[string]string{
	userGoName: `{ deny = ["wire transfer", "password reset"] }`,
	userASName: `{ deny = ["ignore previous instructions", "reveal your system prompt"] }`,
}

// scaffoldPlugin creates the plugin name in lang (go or as) with the moat
// binary under test, in a fresh directory outside any Go module (as a
// plugin author starts: the Go project gets its own go.mod and the SDK copy
// embedded in moat), builds it with `moat plugin build` and copies the
// module to out. Nothing is downloaded: Go needs only the standard library,
// and the AssemblyScript project gets the compiler the SDK pins
// (linkASPackages).
func (e *env) scaffoldPlugin(ctx context.Context, name, lang, out string) pluginFile {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "moat-bench-plugin-")
	if err != nil {
		return pluginFile{na: fmt.Sprintf("creating a directory for %s: %v", name, err)}
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, name)
	moat := func(args ...string) error {
		cmd := exec.CommandContext(ctx, e.opts.MoatBin, args...)
		cmd.Dir = tmp
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("moat %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
		}
		return nil
	}
	if err := moat("plugin", "new", name, "--lang", lang); err != nil {
		return pluginFile{na: err.Error()}
	}
	if lang == "as" {
		if err := e.linkASPackages(ctx, dir); err != nil {
			return pluginFile{na: err.Error()}
		}
	}
	if err := moat("plugin", "build", dir); err != nil {
		return pluginFile{na: err.Error()}
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
	if err == nil {
		err = os.WriteFile(out, b, 0o644)
	}
	if err != nil {
		return pluginFile{na: fmt.Sprintf("copying %s: %v", name, err)}
	}
	sum := sha256.Sum256(b)
	return pluginFile{path: out, sha256: hex.EncodeToString(sum[:])}
}

// linkASPackages gives the AssemblyScript project dir the node_modules
// `npm install` would: the compiler (linked from the SDK's own packages,
// installed with `npm ci` from its lock file when missing, as `make as-sdk`
// does: the same version, TestEmbeddedSDKInSync keeps the scaffold's pin
// equal to it) and the SDK copy the scaffold wrote (moat-sdk, its "file:"
// dependency).
func (e *env) linkASPackages(ctx context.Context, dir string) error {
	sdk := filepath.Join(e.opts.Root, "sdk", "assemblyscript")
	if _, err := os.Stat(filepath.Join(sdk, "node_modules", ".package-lock.json")); err != nil {
		fmt.Fprintf(e.opts.Progress, "installing the AssemblyScript SDK's packages with npm ci in %s\n", sdk)
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = sdk
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci in %s: %v: %s", sdk, err, strings.TrimSpace(string(b)))
		}
	}
	nm := filepath.Join(dir, "node_modules")
	links := map[string]string{ // link -> target
		filepath.Join(nm, "assemblyscript"): filepath.Join(sdk, "node_modules", "assemblyscript"),
		filepath.Join(nm, "@moat", "sdk"):   filepath.Join("..", "..", "moat-sdk"),
		filepath.Join(nm, ".bin", "asc"):    filepath.Join("..", "assemblyscript", "bin", "asc.js"),
	}
	for link, target := range links {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("linking the AssemblyScript packages: %w", err)
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("linking the AssemblyScript packages: %w", err)
		}
	}
	return nil
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
		in := append([]string{}, DefaultInput...)
		for _, u := range []struct {
			name string
			file pluginFile
		}{{userGoName, e.goPlugin}, {userASName, e.asPlugin}} {
			if u.file.path == "" {
				continue
			}
			fmt.Fprintf(&b, "[[plugins]]\nname = %q\npath = %q\nsha256 = %q\nconfig = %s\n\n", u.name, u.file.path, u.file.sha256, userPluginConfig[u.name])
			in = append(in, u.name)
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
	h := messagesHeader(e.clientKey)
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
	h := messagesHeader(e.upKey)
	h.Set("X-Portkey-Provider", "anthropic")
	// Portkey appends /messages to the custom host for the Messages API.
	h.Set("X-Portkey-Custom-Host", e.standinURL+"/v1")
	h.Set("Authorization", "Bearer "+e.upKey)
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
