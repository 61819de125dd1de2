package config

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Client is an application allowed to call moat with a moat-issued key.
type Client struct {
	ID string `toml:"id"`
	// KeySHA256 is the hex SHA-256 of the client's key (from `moat keys new`).
	KeySHA256 string `toml:"key_sha256"`
	// Keys lists further keys, for rotation windows, expiry and revocation.
	Keys []ClientKey `toml:"keys"`
	// Models the client may use; empty allows all.
	Models []string `toml:"models"`
	// Routes the client may call; empty allows the routes that list it.
	Routes []string `toml:"routes"`
	// MaxTokens caps max_tokens per request; 0 means no cap.
	MaxTokens int `toml:"max_tokens"`
	// Input and Output override [pipeline] for this client when set.
	Input  *[]string `toml:"input"`
	Output *[]string `toml:"output"`
	// System is the system-prompt policy on /v1/messages: "client" (default),
	// "pin" (replace with SystemPrompt) or "prepend".
	System       string `toml:"system"`
	SystemPrompt string `toml:"system_prompt"`
	// Judge lists the parts of a request the input chain judges: "user",
	// "assistant", "system", "tools". Empty (the default) judges all;
	// only a trusted client may leave parts out, and never for its JWT
	// callers (a JWT end user's request is judged whole).
	Judge []string `toml:"judge"`
	// WrapUserInput wraps user data (text, tool results, documents) in
	// untrusted-data tags, with one instruction per message.
	WrapUserInput bool   `toml:"wrap_user_input"`
	Tag           string `toml:"tag"`
	// Canary puts a random per-request canary in the system prompt and
	// rejects output that contains it.
	Canary bool `toml:"canary"`
	// Format "json" makes moat parse and schema-check the output.
	Format        string         `toml:"format"`
	Schema        map[string]any `toml:"schema"`
	RepairRetries int            `toml:"repair_retries"`

	// Limits.
	Rate        string `toml:"rate"`
	UserRate    string `toml:"user_rate"`
	MaxInFlight int    `toml:"max_in_flight"`
	// Trusted clients may name end users (UserHeader or metadata.user_id).
	Trusted    bool   `toml:"trusted"`
	UserHeader string `toml:"user_header"`

	// Network.
	AllowIPs    []string `toml:"allow_ips"`
	CORSOrigins []string `toml:"cors_origins"`

	// Local marks a client generated on first start (not from config.toml).
	Local bool `toml:"-"`
}

// ClientKey is one key of a client.
type ClientKey struct {
	SHA256  string    `toml:"sha256"`
	Expires time.Time `toml:"expires"`
	Revoked bool      `toml:"revoked"`
	Note    string    `toml:"note"`
}

// ActiveKeyHashes returns the decoded hashes of keys usable at now.
func (cl *Client) ActiveKeyHashes(now time.Time) [][]byte {
	var out [][]byte
	if cl.KeySHA256 != "" {
		if b, err := hex.DecodeString(cl.KeySHA256); err == nil {
			out = append(out, b)
		}
	}
	for _, k := range cl.Keys {
		if k.Revoked || (!k.Expires.IsZero() && !now.Before(k.Expires)) {
			continue
		}
		if b, err := hex.DecodeString(k.SHA256); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// InputChain returns the client's input chain, or def.
func (cl *Client) InputChain(def []string) []string {
	if cl.Input != nil {
		return *cl.Input
	}
	return def
}

// OutputChain returns the client's output chain, or def.
func (cl *Client) OutputChain(def []string) []string {
	if cl.Output != nil {
		return *cl.Output
	}
	return def
}

func (cl *Client) applyDefaults() {
	if cl.System == "" {
		cl.System = "client"
	}
	if cl.Tag == "" {
		cl.Tag = "user_input"
	}
	if cl.Format == "" {
		cl.Format = "text"
	}
}

func validHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == 32
}

func (c *Config) validateClients(p *problems) {
	seen := map[string]bool{}
	hashes := map[string]string{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		key := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			p.add(key+".id", "is required")
		} else {
			key = fmt.Sprintf("clients[%q]", cl.ID)
			if seen[cl.ID] {
				p.add(key+".id", "duplicate client id")
			}
			seen[cl.ID] = true
		}
		if cl.KeySHA256 == "" && len(cl.Keys) == 0 {
			p.add(key+".key_sha256", "is required (create one with `moat keys new --client %s`)", cl.ID)
		}
		all := []string{}
		if cl.KeySHA256 != "" {
			all = append(all, cl.KeySHA256)
			if !validHash(cl.KeySHA256) {
				p.add(key+".key_sha256", "must be 64 hex characters (a SHA-256), not a key")
			}
		}
		for j, k := range cl.Keys {
			all = append(all, k.SHA256)
			if !validHash(k.SHA256) {
				p.add(fmt.Sprintf("%s.keys[%d].sha256", key, j), "must be 64 hex characters (a SHA-256)")
			}
		}
		for _, h := range all {
			h = strings.ToLower(h)
			if other, ok := hashes[h]; ok && other != cl.ID {
				p.add(key, "shares a key hash with client %q", other)
			}
			hashes[h] = cl.ID
		}
		if cl.MaxTokens < 0 {
			p.add(key+".max_tokens", "must not be negative")
		}
		switch cl.System {
		case "client":
		case "pin", "prepend":
			if cl.SystemPrompt == "" {
				p.add(key+".system_prompt", "is required when system = %q", cl.System)
			}
		default:
			p.add(key+".system", "must be \"client\", \"pin\" or \"prepend\", got %q", cl.System)
		}
		switch cl.Format {
		case "text", "json":
		default:
			p.add(key+".format", "must be \"text\" or \"json\", got %q", cl.Format)
		}
		if !validTag(cl.Tag) {
			p.add(key+".tag", "must be a tag name of letters, digits, '_' or '-', got %q", cl.Tag)
		}
		for j, part := range cl.Judge {
			switch part {
			case "user", "assistant", "system", "tools":
			default:
				p.add(fmt.Sprintf("%s.judge[%d]", key, j), "must be \"user\", \"assistant\", \"system\" or \"tools\", got %q", part)
			}
		}
		if len(cl.Judge) > 0 && !cl.Trusted {
			p.add(key+".judge", "only a trusted client may exempt parts of its requests from the input chain (set trusted = true, or remove judge to judge everything)")
		}
		if cl.UserHeader != "" && !cl.Trusted {
			p.add(key+".user_header", "only trusted clients may name users (set trusted = true)")
		}
		if cl.MaxInFlight < 0 {
			p.add(key+".max_in_flight", "must not be negative")
		}
		for j, s := range cl.AllowIPs {
			if _, err := ParsePrefix(s); err != nil {
				p.add(fmt.Sprintf("%s.allow_ips[%d]", key, j), "%v", err)
			}
		}
		for _, name := range cl.InputChain(nil) {
			c.checkPluginRef(p, key+".input", name)
		}
		for _, name := range cl.OutputChain(nil) {
			c.checkPluginRef(p, key+".output", name)
		}
		checkRate(p, key+".rate", cl.Rate)
		checkRate(p, key+".user_rate", cl.UserRate)
	}
}

func validTag(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, r := range t {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
