package console

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/moat-gateway/moat/host/internal/config"
)

// Masked stands in for a hidden value.
const Masked = "•••"

// sentinel marks masked URL parts until the URL is re-encoded.
const sentinel = "MOATMASKEDZZ"

// shortHash keeps the first 8 hex digits of a key hash: enough to tell keys
// apart, too little to matter.
func shortHash(h string) string {
	if h == "" {
		return ""
	}
	if len(h) <= 8 {
		return Masked
	}
	return h[:8] + "…"
}

// MaskURL hides the secret parts of a URL: the password, query values, the
// fragment and every path segment after the first (webhook URLs often carry
// their token in the path). An unparsable URL is hidden whole.
func MaskURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return Masked
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), sentinel)
		}
	}
	if segs := strings.Split(strings.Trim(u.Path, "/"), "/"); len(segs) > 1 {
		u.Path = "/" + segs[0] + "/" + sentinel
		u.RawPath = ""
	} else if segs[0] != "" {
		u.Path = "/" + sentinel
		u.RawPath = ""
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = sentinel
		} else {
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, url.QueryEscape(k)+"="+sentinel)
			}
			sort.Strings(keys)
			u.RawQuery = strings.Join(keys, "&")
		}
	}
	if u.Fragment != "" {
		u.Fragment = sentinel
		u.RawFragment = ""
	}
	return strings.ReplaceAll(u.String(), sentinel, Masked)
}

// secretKey matches plugin config keys whose values are hidden.
var secretKey = regexp.MustCompile(`(?i)secret|token|passw|key|credential|auth|cookie|webhook|dsn|url`)

// maskFree hides values under secret-looking keys of a free-form table.
func maskFree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if secretKey.MatchString(k) {
				out[k] = Masked
			} else {
				out[k] = maskFree(val)
			}
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(t))
		for i, m := range t {
			out[i] = maskFree(m).(map[string]any)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = maskFree(e)
		}
		return out
	default:
		return v
	}
}

// maskConfig returns a copy of cfg with secrets hidden: key hashes
// shortened, URLs masked (MaskURL), secret-looking plugin config values
// hidden. Environment variable names are kept; their values are never read.
// cfg itself is not changed.
func maskConfig(cfg *config.Config) *config.Config {
	m := *cfg
	m.Upstream.BaseURL = MaskURL(cfg.Upstream.BaseURL)
	m.Limits.RedisURL = MaskURL(cfg.Limits.RedisURL)
	m.Anomaly.Webhook = MaskURL(cfg.Anomaly.Webhook)
	m.Clients = make([]config.Client, len(cfg.Clients))
	for i, cl := range cfg.Clients {
		cl.KeySHA256 = shortHash(cl.KeySHA256)
		keys := make([]config.ClientKey, len(cl.Keys))
		for j, k := range cl.Keys {
			k.SHA256 = shortHash(k.SHA256)
			keys[j] = k
		}
		cl.Keys = keys
		m.Clients[i] = cl
	}
	m.Budgets = make([]config.Budget, len(cfg.Budgets))
	for i, b := range cfg.Budgets {
		b.Webhook = MaskURL(b.Webhook)
		m.Budgets[i] = b
	}
	m.Plugins = make([]config.Plugin, len(cfg.Plugins))
	for i, p := range cfg.Plugins {
		if p.Config != nil {
			p.Config = maskFree(p.Config).(map[string]any)
		}
		m.Plugins[i] = p
	}
	return &m
}

// maskedTOML renders the running config, masked, as TOML. A second pass
// (maskLines) catches secret-looking settings added to the config later
// without a rule in maskConfig.
func maskedTOML(cfg *config.Config) (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(maskConfig(cfg)); err != nil {
		return "", fmt.Errorf("encoding config: %w", err)
	}
	return maskLines(b.String()), nil
}

// Setting names the line pass masks: URL-valued ones through MaskURL,
// secret-valued ones whole. Names ending in _env or _file hold a variable
// name or a path, never the secret, and are kept.
var (
	urlSetting    = regexp.MustCompile(`(?i)(url|webhook|dsn|endpoint)$`)
	secretSetting = regexp.MustCompile(`(?i)(secret|password|passwd|token|api_?key|credentials?|private_?key)$`)
	stringLine    = regexp.MustCompile(`^(\s*)([A-Za-z0-9_-]+) = (".*")$`)
)

// maskLines masks the string values of secret-looking settings in encoded
// TOML, line by line.
func maskLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		m := stringLine.FindStringSubmatch(l)
		if m == nil || m[3] == `""` {
			continue
		}
		name := m[2]
		switch {
		case strings.HasSuffix(name, "_env") || strings.HasSuffix(name, "_file"):
		case urlSetting.MatchString(name):
			v, err := strconv.Unquote(m[3])
			if err != nil {
				lines[i] = m[1] + name + " = " + strconv.Quote(Masked)
				continue
			}
			if masked := MaskURL(v); masked != v {
				lines[i] = m[1] + name + " = " + strconv.Quote(masked)
			}
		case secretSetting.MatchString(name):
			lines[i] = m[1] + name + " = " + strconv.Quote(Masked)
		}
	}
	return strings.Join(lines, "\n")
}
