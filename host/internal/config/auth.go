package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// JWT configures end-user tokens.
type JWT struct {
	// Enabled accepts end-user JWTs in Authorization: Bearer.
	Enabled bool `toml:"enabled"`
	// Client is the client id JWT callers are attributed to.
	Client string `toml:"client"`
	// Algorithms allowed: "HS256", "RS256", "ES256".
	Algorithms []string `toml:"algorithms"`
	SecretEnv  string   `toml:"secret_env"`
	SecretFile string   `toml:"secret_file"`
	// PublicKeyFile is a PEM public key; JWKSFile a JWKS document.
	PublicKeyFile string   `toml:"public_key_file"`
	JWKSFile      string   `toml:"jwks_file"`
	Issuer        string   `toml:"issuer"`
	Audience      string   `toml:"audience"`
	Leeway        Duration `toml:"leeway"`
}

// Anomaly configures anomaly alerts.
type Anomaly struct {
	Enabled bool `toml:"enabled"`
	// SpendFactor fires when the last hour's spend exceeds this multiple of
	// the trailing hourly average.
	SpendFactor float64 `toml:"spend_factor"`
	// NewIP fires when a client key is used from an address not seen before.
	NewIP bool `toml:"new_ip"`
	// AuthFailures per IP per minute that fire an alert.
	AuthFailures int    `toml:"auth_failures"`
	Webhook      string `toml:"webhook"`
}

func (j *JWT) applyDefaults() {
	if len(j.Algorithms) == 0 {
		j.Algorithms = []string{"HS256", "RS256", "ES256"}
	}
}

func (a *Anomaly) applyDefaults() {
	if a.SpendFactor == 0 {
		a.SpendFactor = 5
	}
	if a.AuthFailures == 0 {
		a.AuthFailures = 10
	}
}

// maxJWTLeeway bounds jwt.leeway.
const maxJWTLeeway = 5 * time.Minute

func (c *Config) validateAuth(p *problems) {
	c.validateCORS(p)
	c.validateAnomaly(p)
	j := &c.JWT
	j.SecretFile = c.resolve(j.SecretFile)
	j.PublicKeyFile = c.resolve(j.PublicKeyFile)
	j.JWKSFile = c.resolve(j.JWKSFile)
	if !j.Enabled {
		return
	}
	if j.Client == "" {
		p.add("jwt.client", "is required: the client id JWT callers count against")
	} else if _, ok := c.Client(j.Client); !ok {
		p.add("jwt.client", "names client %q, which no [[clients]] block defines", j.Client)
	}
	hasHS, hasAsym := false, false
	for _, a := range j.Algorithms {
		switch a {
		case "HS256":
			hasHS = true
		case "RS256", "ES256":
			hasAsym = true
		default:
			p.add("jwt.algorithms", "unsupported algorithm %q (HS256, RS256, ES256)", a)
		}
	}
	secret := j.SecretEnv != "" || j.SecretFile != ""
	public := j.PublicKeyFile != "" || j.JWKSFile != ""
	if j.SecretEnv != "" && j.SecretFile != "" {
		p.add("jwt", "set secret_env or secret_file, not both")
	}
	if j.PublicKeyFile != "" && j.JWKSFile != "" {
		p.add("jwt", "set public_key_file or jwks_file, not both")
	}
	switch {
	case !secret && !public:
		p.add("jwt", "set secret_env, secret_file, public_key_file or jwks_file")
	case !(secret && hasHS) && !(public && hasAsym):
		p.add("jwt.algorithms", "none of %v can use the configured key (HS256 needs secret_env/secret_file; RS256 and ES256 need public_key_file/jwks_file)", j.Algorithms)
	}
	if j.Leeway.Duration > maxJWTLeeway {
		p.add("jwt.leeway", "must be at most %s, got %s", maxJWTLeeway, j.Leeway.Duration)
	}
}

// validateCORS checks each client's cors_origins: an origin is
// scheme://host[:port] with scheme http or https, and no wildcard.
func (c *Config) validateCORS(p *problems) {
	for i := range c.Clients {
		cl := &c.Clients[i]
		for j, o := range cl.CORSOrigins {
			key := fmt.Sprintf("clients[%q].cors_origins[%d]", cl.ID, j)
			if err := checkOrigin(o); err != "" {
				p.add(key, "%s, got %q", err, o)
			}
		}
	}
}

func checkOrigin(o string) string {
	if strings.Contains(o, "*") {
		return "wildcards are not allowed; list each origin"
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an origin such as \"https://app.example.com\""
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "an origin has no path, query, fragment or user"
	}
	return ""
}

func (c *Config) validateAnomaly(p *problems) {
	a := &c.Anomaly
	if a.SpendFactor <= 1 {
		p.add("anomaly.spend_factor", "must be greater than 1 (a multiple of the trailing hourly average), got %v", a.SpendFactor)
	}
	if a.AuthFailures < 1 {
		p.add("anomaly.auth_failures", "must be at least 1, got %d", a.AuthFailures)
	}
	if a.Webhook != "" && !strings.HasPrefix(a.Webhook, "http://") && !strings.HasPrefix(a.Webhook, "https://") {
		p.add("anomaly.webhook", "must be an http(s) URL")
	}
}
