// Package doctor checks a config and its environment against moat's
// production checklist (`moat doctor`). Each check gives pass, warn or fail;
// a fail is something that leaves the key, the budget or the audit trail
// unprotected, and makes `moat doctor` exit non-zero.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/keysource"
	"github.com/moat-gateway/moat/host/internal/scan"
)

// Statuses of a Result.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
)

// Result is the outcome of one check. Fix says what to do when Status is
// not Pass.
type Result struct {
	Name   string
	Status string
	Detail string
	Fix    string
}

// Sanitizers are the built-in input plugins the input-sanitizer check looks
// for (by builtin name or plugin name).
var Sanitizers = []string{"strip-markers", "unicode-clean", "injection-heuristics"}

type checker struct {
	cfg *config.Config
	env func(string) string
	out []Result
	key string // the upstream key when readable, for the forwarding check
}

func (c *checker) pass(name, detail string, args ...any) {
	c.out = append(c.out, Result{Name: name, Status: Pass, Detail: fmt.Sprintf(detail, args...)})
}

func (c *checker) add(name, status, fix, detail string, args ...any) {
	c.out = append(c.out, Result{Name: name, Status: status, Detail: fmt.Sprintf(detail, args...), Fix: fix})
}

// Run checks cfg, the files it names and the environment (read through env,
// os.Getenv in production) and returns one Result per check, in a fixed
// order.
func Run(cfg *config.Config, env func(string) string) []Result {
	c := &checker{cfg: cfg, env: env}
	c.upstreamKey()
	c.fileModes()
	c.keyNotForwarded()
	c.environment()
	c.budgets()
	c.userLimits()
	c.inputWrapping()
	c.inputSanitizers()
	c.outputValidators()
	c.audit()
	c.listeners()
	c.jwt()
	return c.out
}

func (c *checker) upstreamKey() {
	const name = "upstream key source"
	u := c.cfg.Upstream
	if u.APIKeyFile != "" {
		b, err := os.ReadFile(u.APIKeyFile)
		switch {
		case err != nil:
			c.add(name, Fail, "create the file with the Anthropic key (mode 0600) or fix upstream.api_key_file", "cannot read upstream.api_key_file %s: %v", u.APIKeyFile, err)
		case strings.TrimSpace(string(b)) == "":
			c.add(name, Fail, "put the Anthropic key in the file", "upstream.api_key_file %s is empty", u.APIKeyFile)
		default:
			c.key = strings.TrimSpace(string(b))
			c.pass(name, "from file %s (%s); config.toml holds no key (moat refuses one)", u.APIKeyFile, keysource.Fingerprint(c.key))
		}
		return
	}
	envName := u.APIKeyEnv
	if envName == "" {
		envName = config.DefaultAPIKeyEnv
	}
	v := strings.TrimSpace(c.env(envName))
	if v == "" {
		c.add(name, Fail, fmt.Sprintf("set %s in moat's service environment, or set upstream.api_key_file", envName), "environment variable %s is empty or unset", envName)
		return
	}
	c.key = v
	if !strings.HasPrefix(v, "sk-ant-") {
		c.add(name, Warn, "check that the variable holds an Anthropic API key", "from $%s (%s), but it does not start with sk-ant-", envName, keysource.Fingerprint(v))
		return
	}
	c.pass(name, "from $%s (%s); config.toml holds no key (moat refuses one)", envName, keysource.Fingerprint(v))
}

// fileModes checks that secrets are not world-readable and that files
// steering moat are not world-writable.
func (c *checker) fileModes() {
	type file struct {
		label  string
		path   string
		secret bool // holds a secret: world-readable fails, group-readable warns
	}
	files := []file{{"config file", c.cfg.Path, false}}
	if c.cfg.Upstream.APIKeyFile != "" {
		files = append(files, file{"upstream key file", c.cfg.Upstream.APIKeyFile, true})
	}
	files = append(files, file{"local client keys file", c.cfg.LocalKeysPath, false})
	if c.cfg.JWT.Enabled && c.cfg.JWT.SecretFile != "" {
		files = append(files, file{"jwt secret file", c.cfg.JWT.SecretFile, true})
	}
	if c.cfg.Audit.HMACKeyFile != "" {
		files = append(files, file{"audit hmac key file", c.cfg.Audit.HMACKeyFile, true})
	}
	for _, f := range files {
		name := f.label + " mode"
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a missing key file fails its own check
		}
		if err != nil {
			c.add(name, Fail, "fix the path", "cannot stat %s: %v", f.path, err)
			continue
		}
		m := fi.Mode().Perm()
		chmod := fmt.Sprintf("chmod 600 %s", f.path)
		switch {
		case m&0o002 != 0:
			c.add(name, Fail, chmod, "%s is world-writable (%04o): anyone on the host can change it", f.path, m)
		case f.secret && m&0o004 != 0:
			c.add(name, Fail, chmod, "%s is world-readable (%04o)", f.path, m)
		case m&0o004 != 0:
			c.add(name, Warn, chmod, "%s is world-readable (%04o); it holds no key, but client settings and key hashes are nobody else's business", f.path, m)
		case f.secret && m&0o040 != 0:
			c.add(name, Warn, chmod, "%s is group-readable (%04o)", f.path, m)
		default:
			c.pass(name, "%s is %04o", f.path, m)
		}
	}
}

// keyNotForwarded: moat never sends its key downstream; the remaining risk
// is a key pasted into a prompt moat sends to Claude (and Claude may repeat).
func (c *checker) keyNotForwarded() {
	const name = "key never forwarded"
	var where []string
	leaks := func(s string) bool {
		return scan.ContainsKey(s) || (c.key != "" && len(c.key) >= 8 && strings.Contains(s, c.key))
	}
	for _, cl := range c.cfg.Clients {
		if leaks(cl.SystemPrompt) {
			where = append(where, fmt.Sprintf("clients[%q].system_prompt", cl.ID))
		}
	}
	for _, r := range c.cfg.Routes {
		for field, s := range map[string]string{"system": r.SystemText, "task": r.Task, "label": r.Label} {
			if leaks(s) {
				where = append(where, fmt.Sprintf("routes[%q].%s", r.Name, field))
			}
		}
	}
	slices.Sort(where)
	if len(where) > 0 {
		c.add(name, Fail, "remove the key from the prompt and rotate it", "a key-shaped string is in %s: it would be sent to Claude and could be echoed to clients", strings.Join(where, ", "))
		return
	}
	c.pass(name, "moat sends the upstream key only to %s, never to clients; no prompt holds a key", c.cfg.Upstream.BaseURL)
	base, err := url.Parse(c.cfg.Upstream.BaseURL)
	switch {
	case err != nil:
		c.add("upstream over TLS", Fail, "fix upstream.base_url", "upstream.base_url does not parse: %v", err)
	case base.Scheme == "https":
		c.pass("upstream over TLS", "%s", c.cfg.Upstream.BaseURL)
	case loopback(net.JoinHostPort(base.Hostname(), "0")):
		c.add("upstream over TLS", Warn, "use https:// outside of tests", "upstream %s is plain HTTP on loopback (a test upstream?)", c.cfg.Upstream.BaseURL)
	default:
		c.add("upstream over TLS", Fail, "use an https:// upstream.base_url", "upstream %s is plain HTTP: the key would cross the network in clear", c.cfg.Upstream.BaseURL)
	}
}

func (c *checker) environment() {
	const name = "environment named"
	if c.cfg.Environment == "" || c.cfg.Environment == config.DefaultEnvironment {
		c.add(name, Warn, `set environment = "production" (or the deployment's name) in config.toml`, "environment is %q, the default", config.DefaultEnvironment)
		return
	}
	c.pass(name, "environment = %q", c.cfg.Environment)
}

func (c *checker) budgets() {
	const name = "budgets and alerts"
	if len(c.cfg.Budgets) == 0 {
		c.add(name, Warn, `add a [[budgets]] block (scope = "global", usd = ..., alerts = [0.5, 0.8])`, "no budget: spend is unbounded")
		return
	}
	var noAlerts []string
	for i, b := range c.cfg.Budgets {
		if len(b.Alerts) == 0 {
			noAlerts = append(noAlerts, fmt.Sprintf("budgets[%d] (%s %s)", i, b.Scope, b.Period))
		}
	}
	if len(noAlerts) > 0 {
		c.add(name, Warn, "add alerts = [0.5, 0.8] and a webhook", "%s: no alert before the budget is exhausted", strings.Join(noAlerts, ", "))
		return
	}
	c.pass(name, "%d budget(s), each with alerts", len(c.cfg.Budgets))
}

func (c *checker) userLimits() {
	const name = "per-user rate limits"
	l := c.cfg.Limits
	if l.UserRate != "" {
		c.pass(name, "limits.user_rate = %q", l.UserRate)
		return
	}
	var missing []string
	for _, cl := range c.cfg.Clients {
		if cl.UserRate == "" {
			missing = append(missing, cl.ID)
		}
	}
	if len(c.cfg.Clients) > 0 && len(missing) == 0 {
		c.pass(name, "every client sets user_rate")
		return
	}
	c.add(name, Warn, `set limits.user_rate (e.g. "20-M") so one user cannot use a client's whole quota`, "no per-user rate limit (limits.user_rate unset; clients without user_rate: %s)", listOrNone(missing))
}

func (c *checker) inputWrapping() {
	const name = "user input wrapped"
	var off []string
	for _, cl := range c.cfg.Clients {
		if !cl.WrapUserInput {
			off = append(off, cl.ID)
		}
	}
	if len(off) > 0 {
		c.add(name, Warn, "set wrap_user_input = true on these clients, or have them call routes", "routes always wrap user data; on /v1/messages these clients send user text unwrapped: %s", strings.Join(off, ", "))
		return
	}
	c.pass(name, "routes always wrap user data; every client wraps on /v1/messages")
}

func (c *checker) isSanitizer(plugin string) bool {
	for _, s := range Sanitizers {
		if plugin == s {
			return true
		}
	}
	if p, ok := c.cfg.Plugin(plugin); ok {
		for _, s := range Sanitizers {
			if p.Builtin == s {
				return true
			}
		}
	}
	return false
}

func (c *checker) inputSanitizers() {
	const name = "input sanitizers"
	chains := map[string][]string{"[pipeline].input": c.cfg.Pipeline.Input}
	for _, cl := range c.cfg.Clients {
		if cl.Input != nil {
			chains[fmt.Sprintf("clients[%q].input", cl.ID)] = *cl.Input
		}
	}
	for _, r := range c.cfg.Routes {
		if r.Input != nil {
			chains[fmt.Sprintf("routes[%q].input", r.Name)] = *r.Input
		}
	}
	var empty, custom []string
	for where, chain := range chains {
		has := false
		for _, p := range chain {
			has = has || c.isSanitizer(p)
		}
		switch {
		case len(chain) == 0:
			empty = append(empty, where)
		case !has:
			custom = append(custom, where)
		}
	}
	slices.Sort(empty)
	slices.Sort(custom)
	fix := fmt.Sprintf("add %s to the chain (as [[plugins]] with builtin = ...)", strings.Join(Sanitizers, ", "))
	switch {
	case len(empty) > 0:
		c.add(name, Fail, fix, "no input sanitizer runs in %s", strings.Join(empty, ", "))
	case len(custom) > 0:
		c.add(name, Warn, fix, "%s run only custom plugins; none of the built-in sanitizers", strings.Join(custom, ", "))
	default:
		c.pass(name, "every input chain has a built-in sanitizer")
	}
}

func (c *checker) outputValidators() {
	const name = "output validators"
	var noSchema []string
	for _, r := range c.cfg.Routes {
		if r.Format == "json" && len(r.Schema) == 0 {
			noSchema = append(noSchema, fmt.Sprintf("routes[%q]", r.Name))
		}
	}
	for _, cl := range c.cfg.Clients {
		if cl.Format == "json" && len(cl.Schema) == 0 {
			noSchema = append(noSchema, fmt.Sprintf("clients[%q]", cl.ID))
		}
	}
	switch {
	case len(noSchema) > 0:
		c.add(name, Warn, "add a [routes.schema] (JSON Schema) so malformed or injected output is rejected", "JSON output without a schema: %s", strings.Join(noSchema, ", "))
	case len(c.cfg.Pipeline.Output) == 0:
		c.add(name, Warn, "add output validators to [pipeline].output", "no output validator in [pipeline].output")
	default:
		c.pass(name, "output chain %v; every JSON route has a schema", c.cfg.Pipeline.Output)
	}
}

// auditChain checks the chain key (present, long enough, not readable by
// others) and that the stored checkpoint authenticates with it.
func (c *checker) auditChain() {
	a := c.cfg.Audit
	var secret []byte
	switch {
	case a.ChainKeyEnv != "":
		v := c.env(a.ChainKeyEnv)
		if v == "" {
			c.add("audit chain key", Fail, "set "+a.ChainKeyEnv+" (16 bytes or more, kept from whoever can write the audit log)", "audit.chain_key_env = %q but it is empty: moat will not start", a.ChainKeyEnv)
			return
		}
		secret = []byte(v)
	default:
		fi, err := os.Stat(a.ChainKeyFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.pass("audit chain key", "%s does not exist yet; moat creates it (32 random bytes, 0600) on first start: give a copy to whoever runs moat audit verify", a.ChainKeyFile)
			return
		case err != nil:
			c.add("audit chain key", Fail, "fix audit.chain_key_file", "cannot stat %s: %v", a.ChainKeyFile, err)
			return
		case fi.Mode().Perm()&0o077 != 0:
			c.add("audit chain key", Fail, "chmod 600 "+a.ChainKeyFile, "%s is %04o: whoever reads it can re-forge the audit trail", a.ChainKeyFile, fi.Mode().Perm())
			return
		}
		b, err := os.ReadFile(a.ChainKeyFile)
		if err != nil {
			c.add("audit chain key", Fail, "fix audit.chain_key_file", "cannot read %s: %v", a.ChainKeyFile, err)
			return
		}
		secret = []byte(strings.TrimSpace(string(b)))
	}
	key, err := audit.NewChainKey(secret)
	if err != nil {
		c.add("audit chain key", Fail, "use a key of 16 bytes or more", "%v", err)
		return
	}
	c.pass("audit chain key", "key id %s", key.ID())
	line, err := audit.FileStore{Path: a.CheckpointPath}.Load(context.Background())
	switch {
	case err != nil:
		c.add("audit checkpoint", Fail, "run moat audit verify, then moat audit checkpoint once you know why", "%v", err)
	case line == nil:
		c.pass("audit checkpoint", "%s does not exist yet; moat writes it on start", a.CheckpointPath)
	default:
		cp, err := audit.ParseCheckpoint(line, key)
		if err != nil {
			c.add("audit checkpoint", Fail, "run moat audit verify, then moat audit checkpoint once you know why", "%s: %v", a.CheckpointPath, err)
			return
		}
		c.pass("audit checkpoint", "seq %d at %s", cp.Seq, cp.Time.Format("2006-01-02T15:04:05Z"))
	}
}

func (c *checker) audit() {
	a := c.cfg.Audit
	if a.Disabled {
		c.add("audit on", Fail, "remove audit.disabled", "the audit trail is disabled")
	} else {
		c.pass("audit on", "audit file %s", a.Path)
	}
	if a.FailOpen {
		c.add("audit fails closed", Fail, "set audit.fail_open = false", "audit.fail_open = true: calls go through when the audit record cannot be written")
	} else {
		c.pass("audit fails closed", "a call whose audit record cannot be written is refused")
	}
	fi, err := os.Stat(a.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.pass("audit file mode", "%s does not exist yet; moat creates it 0600", a.Path)
	case err != nil:
		c.add("audit file mode", Fail, "fix audit.path", "cannot stat %s: %v", a.Path, err)
	case fi.Mode().Perm()&0o077 != 0:
		c.add("audit file mode", Fail, "chmod 600 "+a.Path, "%s is %04o, readable or writable by others", a.Path, fi.Mode().Perm())
	default:
		c.pass("audit file mode", "%s is %04o", a.Path, fi.Mode().Perm())
	}
	switch a.Content {
	case "full":
		c.add("audit content", Warn, `use content = "hmac" or "redacted" unless you must keep prompts`, "the audit trail stores full prompts and completions")
	case "hmac":
		if c.env(a.HMACKeyEnv) == "" && a.HMACKeyFile == "" {
			c.add("audit content", Fail, "set "+a.HMACKeyEnv+" or audit.hmac_key_file", "content = \"hmac\" but $%s is empty", a.HMACKeyEnv)
		} else {
			c.pass("audit content", "content = %q", a.Content)
		}
	default:
		c.pass("audit content", "content = %q", a.Content)
	}
	if !a.Disabled {
		c.auditChain()
	}
	if c.cfg.Limits.FailOpen {
		c.add("limits fail closed", Warn, "set limits.fail_open = false", "limits.fail_open = true: rate limits and budgets are skipped when the store is down")
	} else {
		c.pass("limits fail closed", "requests are refused when the limit store is down")
	}
}

// loopback reports whether a listen address binds only the loopback
// interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c *checker) listeners() {
	l := c.cfg.Server.Listen
	if loopback(l) {
		c.pass("listener", "%s is loopback only", l)
	} else {
		c.add("listener", Warn, "put moat behind a TLS-terminating proxy (and set server.trusted_proxies), or listen on 127.0.0.1", "%s is reachable from the network over plain HTTP: client keys travel in clear", l)
	}
	for _, p := range c.cfg.Server.TrustedProxies {
		if pr, err := netip.ParsePrefix(p); err == nil && pr.Bits() == 0 {
			c.add("trusted proxies", Warn, "list only your proxies' addresses", "server.trusted_proxies has %s: any caller can forge X-Forwarded-For and dodge IP allowlists and limits", p)
		}
	}
	ad := c.cfg.Admin
	switch {
	case ad.Listen == "":
		c.pass("admin listener", "disabled")
		return
	case loopback(ad.Listen):
		c.pass("admin listener", "%s is loopback only", ad.Listen)
	default:
		c.add("admin listener", Fail, "listen on 127.0.0.1 (reach it through an SSH tunnel) or leave admin.listen empty", "admin listener %s is reachable from the network", ad.Listen)
	}
	if c.env(ad.TokenEnv) == "" {
		c.add("admin token", Fail, "set "+ad.TokenEnv+" to a long random value", "admin listener is on but $%s is empty", ad.TokenEnv)
	} else {
		c.pass("admin token", "from $%s", ad.TokenEnv)
	}
}

func (c *checker) jwt() {
	j := c.cfg.JWT
	if !j.Enabled {
		return
	}
	var missing []string
	if j.Issuer == "" {
		missing = append(missing, "issuer")
	}
	if j.Audience == "" {
		missing = append(missing, "audience")
	}
	if len(missing) > 0 {
		c.add("jwt claims", Warn, "set jwt.issuer and jwt.audience", "jwt.%s unset: tokens minted for other services are accepted", strings.Join(missing, " and jwt."))
		return
	}
	c.pass("jwt claims", "issuer and audience checked")
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none configured"
	}
	return strings.Join(s, ", ")
}

// Print writes the results as a table with a summary line and reports
// whether any check failed.
func Print(w io.Writer, results []Result) (failed bool) {
	width := 0
	for _, r := range results {
		width = max(width, len(r.Name))
	}
	var n = map[string]int{}
	for _, r := range results {
		n[r.Status]++
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(r.Status), width, r.Name, r.Detail)
		if r.Fix != "" && r.Status != Pass {
			fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", r.Fix)
		}
	}
	fmt.Fprintf(w, "doctor: %d pass, %d warn, %d fail\n", n[Pass], n[Warn], n[Fail])
	return n[Fail] > 0
}
