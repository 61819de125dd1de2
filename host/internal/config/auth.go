package config

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

func (c *Config) validateAuth(p *problems) {
	j := &c.JWT
	if !j.Enabled {
		return
	}
	if j.Client == "" {
		p.add("jwt.client", "is required: the client id JWT callers count against")
	} else if _, ok := c.Client(j.Client); !ok {
		p.add("jwt.client", "names client %q, which no [[clients]] block defines", j.Client)
	}
	for _, a := range j.Algorithms {
		switch a {
		case "HS256", "RS256", "ES256":
		default:
			p.add("jwt.algorithms", "unsupported algorithm %q (HS256, RS256, ES256)", a)
		}
	}
	if j.SecretEnv == "" && j.SecretFile == "" && j.PublicKeyFile == "" && j.JWKSFile == "" {
		p.add("jwt", "set secret_env, secret_file, public_key_file or jwks_file")
	}
}
