// Package config loads, checks and holds moat's configuration (config.toml).
//
// Decoding is strict: an unknown key is an error naming the key, and every
// problem in a file is reported at once. A *Config is immutable once Load
// returns it; a reload builds a new one.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole of config.toml. Section types live in the files named
// after them (limits.go, audit.go, ...).
type Config struct {
	// Environment names the deployment ("production", "staging", ...); it is
	// shown in logs, audit records and metrics.
	Environment string             `toml:"environment"`
	Server      Server             `toml:"server"`
	Upstream    Upstream           `toml:"upstream"`
	Clients     []Client           `toml:"clients"`
	Pipeline    Chains             `toml:"pipeline"`
	Plugins     []Plugin           `toml:"plugins"`
	Sandbox     Sandbox            `toml:"sandbox"`
	Routes      []Route            `toml:"routes"`
	Limits      Limits             `toml:"limits"`
	Budgets     []Budget           `toml:"budgets"`
	Pricing     map[string]Pricing `toml:"pricing"`
	Admin       Admin              `toml:"admin"`
	Audit       Audit              `toml:"audit"`
	JWT         JWT                `toml:"jwt"`
	Anomaly     Anomaly            `toml:"anomaly"`
	Retry       Retry              `toml:"retry"`

	// Path is the file the config was read from ("" when built in code).
	Path string `toml:"-"`
	// LocalKeysPath is the git-ignored file holding generated local client
	// key hashes, next to the config file.
	LocalKeysPath string `toml:"-"`
}

// Server is the public listener.
type Server struct {
	Listen            string   `toml:"listen"`
	MaxBodyBytes      int64    `toml:"max_body_bytes"`
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	ShutdownGrace     Duration `toml:"shutdown_grace"`
	// AllowedBetas lists the anthropic-beta values forwarded upstream; empty
	// forwards all.
	AllowedBetas []string `toml:"allowed_betas"`
	// UnlistedBetas says what happens to an anthropic-beta value missing
	// from a non-empty AllowedBetas: "refuse" (the default) answers 400
	// naming it; "relay" forwards it anyway (the list then only documents).
	// A beta is never dropped silently.
	UnlistedBetas string `toml:"unlisted_betas"`
	// TrustedProxies lists CIDRs whose X-Forwarded-For is believed; empty
	// trusts none.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Upstream is the Anthropic API moat calls.
type Upstream struct {
	BaseURL string `toml:"base_url"`
	// APIKeyEnv names the environment variable holding the Anthropic key.
	APIKeyEnv string `toml:"api_key_env"`
	// APIKeyFile is a file holding the key; watched and re-read on change.
	APIKeyFile string `toml:"api_key_file"`
	// Timeout bounds a whole non-streaming call.
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds dialing.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// FirstByteTimeout bounds the wait for response headers.
	FirstByteTimeout Duration `toml:"first_byte_timeout"`
	// StreamIdleTimeout bounds the gap between two streamed events.
	StreamIdleTimeout Duration `toml:"stream_idle_timeout"`
	// MaxStreamDuration bounds a whole streamed response, however steadily
	// the upstream keeps sending. Default 10m.
	MaxStreamDuration Duration `toml:"max_stream_duration"`
	// MaxIdleConns is the keep-alive pool size.
	MaxIdleConns int `toml:"max_idle_conns"`
	// MaxResponseBytes caps a non-streaming response body.
	MaxResponseBytes int64 `toml:"max_response_bytes"`
	// RelayUnknownTypes names content block, delta and stream event types
	// that moat does not model and relays anyway. In a response they pass
	// unjudged by the output chain (their strings are still checked for
	// keys); in a request, a block of such a type is relayed with every
	// string in it judged by the input chain as text. By default an
	// unknown type that can carry text is refused. Names are lowercase
	// snake_case, as the API writes types.
	RelayUnknownTypes []string `toml:"relay_unknown_types"`
}

// Chains names ordered plugin chains for the input and output phases.
type Chains struct {
	Input  []string `toml:"input"`
	Output []string `toml:"output"`
}

// Retry configures retries of idempotent upstream failures.
type Retry struct {
	// Attempts is the total number of tries (1 = no retry). Default 3.
	Attempts int `toml:"attempts"`
	// Backoff is the first wait; it doubles each try. Default 200ms.
	Backoff Duration `toml:"backoff"`
	// MaxBackoff caps one wait, including a retry-after. Default 5s.
	MaxBackoff Duration `toml:"max_backoff"`
}

// Duration is a time.Duration written as a string in TOML ("30s", "2m").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (examples: \"500ms\", \"30s\", \"2m\")", string(b))
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Key  string
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if loc == "" {
		loc = "config"
	}
	if p.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Error lists every problem found in a config.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	if len(parts) == 1 {
		return "invalid config: " + parts[0]
	}
	return fmt.Sprintf("invalid config (%d problems):\n  %s", len(parts), strings.Join(parts, "\n  "))
}

// problems collects validation findings.
type problems struct {
	file string
	list []Problem
}

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, Problem{File: p.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// literalKey matches something shaped like an Anthropic key.
var literalKey = regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]{6,}`)

// Load reads, decodes strictly, applies defaults and validates a config file.
// The error, when not nil, is an *Error listing every problem or a read error.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(b, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates config bytes; path names them in problems and
// anchors relative paths.
func Parse(b []byte, path string) (*Config, error) {
	p := &problems{file: path}
	if loc := literalKey.FindIndex(b); loc != nil {
		line := 1 + strings.Count(string(b[:loc[0]]), "\n")
		p.add("", "line %d holds a literal Anthropic key (sk-ant-...): keys belong in an environment variable (upstream.api_key_env) or a file (upstream.api_key_file), never in config", line)
		return nil, &Error{Problems: p.list}
	}
	var c Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			p.add("", "line %d: %s", perr.Position.Line, perr.Message)
		} else {
			p.add("", "%v", err)
		}
		return nil, &Error{Problems: p.list}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, 0, len(und))
		for _, k := range und {
			if isFreeForm(k) {
				continue
			}
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.add(k, "unknown key")
		}
	}
	c.Path = path
	if path != "" {
		c.LocalKeysPath = filepath.Join(filepath.Dir(path), ".moat-local-keys.toml")
	}
	c.applyDefaults()
	c.validate(p)
	if len(p.list) > 0 {
		return nil, &Error{Problems: p.list}
	}
	return &c, nil
}

// isFreeForm reports keys under tables whose contents are not moat's to
// check: a plugin's config table and a route's schema.
func isFreeForm(k toml.Key) bool {
	for i, part := range k {
		if part == "config" && i >= 1 && k[0] == "plugins" {
			return true
		}
		if part == "schema" && i >= 1 && (k[0] == "routes" || k[0] == "clients") {
			return true
		}
	}
	return false
}

// Default values.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultBaseURL      = "https://api.anthropic.com"
	DefaultAPIKeyEnv    = "ANTHROPIC_API_KEY"
	DefaultMaxBodyBytes = 32 << 20
	DefaultEnvironment  = "development"
)

// Values of server.unlisted_betas.
const (
	BetasRefuse = "refuse"
	BetasRelay  = "relay"
)

func (c *Config) applyDefaults() {
	if c.Environment == "" {
		c.Environment = DefaultEnvironment
	}
	s := &c.Server
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&s.ReadHeaderTimeout, 10*time.Second)
	setDur(&s.ReadTimeout, 60*time.Second)
	setDur(&s.IdleTimeout, 120*time.Second)
	setDur(&s.ShutdownGrace, 30*time.Second)
	if s.UnlistedBetas == "" {
		s.UnlistedBetas = BetasRefuse
	}
	u := &c.Upstream
	if u.BaseURL == "" {
		u.BaseURL = DefaultBaseURL
	}
	if u.APIKeyEnv == "" && u.APIKeyFile == "" {
		u.APIKeyEnv = DefaultAPIKeyEnv
	}
	setDur(&u.Timeout, 10*time.Minute)
	setDur(&u.ConnectTimeout, 10*time.Second)
	setDur(&u.FirstByteTimeout, 5*time.Minute)
	setDur(&u.StreamIdleTimeout, 5*time.Minute)
	setDur(&u.MaxStreamDuration, 10*time.Minute)
	u.APIKeyFile = c.resolve(u.APIKeyFile)
	if u.MaxIdleConns == 0 {
		u.MaxIdleConns = 256
	}
	if u.MaxResponseBytes == 0 {
		u.MaxResponseBytes = 64 << 20
	}
	if c.Retry.Attempts == 0 {
		c.Retry.Attempts = 3
	}
	setDur(&c.Retry.Backoff, 200*time.Millisecond)
	setDur(&c.Retry.MaxBackoff, 5*time.Second)
	for i := range c.Clients {
		c.Clients[i].applyDefaults()
	}
	for i := range c.Plugins {
		c.Plugins[i].applyDefaults()
	}
	if c.Sandbox.MaxMemoryMB == 0 {
		c.Sandbox.MaxMemoryMB = 1024
	}
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
	c.Limits.applyDefaults()
	for i := range c.Budgets {
		c.Budgets[i].applyDefaults()
	}
	c.Admin.applyDefaults()
	c.Admin.TLSCertFile = c.resolve(c.Admin.TLSCertFile)
	c.Admin.TLSKeyFile = c.resolve(c.Admin.TLSKeyFile)
	c.Audit.applyDefaults(c)
	c.JWT.applyDefaults()
	c.Anomaly.applyDefaults()
}

func setDur(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func (c *Config) validate(p *problems) {
	if c.Server.MaxBodyBytes < 0 {
		p.add("server.max_body_bytes", "must be positive")
	}
	if !strings.HasPrefix(c.Upstream.BaseURL, "http://") && !strings.HasPrefix(c.Upstream.BaseURL, "https://") {
		p.add("upstream.base_url", "must start with http:// or https://, got %q", c.Upstream.BaseURL)
	}
	if c.Upstream.APIKeyEnv != "" && c.Upstream.APIKeyFile != "" {
		p.add("upstream", "set api_key_env or api_key_file, not both")
	}
	if b := c.Server.UnlistedBetas; b != BetasRefuse && b != BetasRelay {
		p.add("server.unlisted_betas", "must be %q or %q, got %q", BetasRefuse, BetasRelay, b)
	}
	if c.Retry.Attempts < 1 {
		p.add("retry.attempts", "must be at least 1")
	}
	for i, s := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	c.validateRelay(p)
	c.validateClients(p)
	c.validatePlugins(p)
	c.validateRoutes(p)
	c.validateLimits(p)
	c.validateAudit(p)
	c.validateAuth(p)
	c.validateAdmin(p)
}

// typeName is the shape of an API type name.
var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// maxRelayTypes bounds upstream.relay_unknown_types: the escape is for a
// few named types, not a way to turn the check off.
const maxRelayTypes = 16

func (c *Config) validateRelay(p *problems) {
	names := c.Upstream.RelayUnknownTypes
	if len(names) > maxRelayTypes {
		p.add("upstream.relay_unknown_types", "lists %d types; at most %d may be relayed unjudged", len(names), maxRelayTypes)
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case !typeName.MatchString(n):
			p.add("upstream.relay_unknown_types", "%q is not a type name (lowercase letters, digits and _, as the API writes types)", n)
		case seen[n]:
			p.add("upstream.relay_unknown_types", "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// ParsePrefix parses an entry of a CIDR list (server.trusted_proxies,
// clients.allow_ips): a CIDR, masked, or a single address as a full-length
// prefix. Validation and the components that use the lists share it, so a
// list that passes config check is the list that is applied.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR or address: %q", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// Client finds a client by id.
func (c *Config) Client(id string) (*Client, bool) {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i], true
		}
	}
	return nil, false
}

// Plugin finds a plugin by name.
func (c *Config) Plugin(name string) (*Plugin, bool) {
	for i := range c.Plugins {
		if c.Plugins[i].Name == name {
			return &c.Plugins[i], true
		}
	}
	return nil, false
}

// Route finds a route by name.
func (c *Config) Route(name string) (*Route, bool) {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i], true
		}
	}
	return nil, false
}

// resolve makes a path relative to the config file's directory.
func (c *Config) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || c.Path == "" {
		return path
	}
	return filepath.Join(filepath.Dir(c.Path), path)
}
