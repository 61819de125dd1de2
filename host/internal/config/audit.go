package config

import "time"

// Audit configures the audit trail.
type Audit struct {
	// Path of the audit file; "" means audit.jsonl next to the config.
	Path string `toml:"path"`
	// Disabled turns the audit trail off (moat doctor fails on it).
	Disabled bool `toml:"disabled"`
	// Content is "off" (default), "hmac", "redacted" or "full".
	Content string `toml:"content"`
	// HMACKeyEnv or HMACKeyFile (one of them) supplies the key for content
	// "hmac"; default env MOAT_AUDIT_HMAC_KEY. The key must be at least 16
	// bytes (checked when the audit log opens).
	HMACKeyEnv  string `toml:"hmac_key_env"`
	HMACKeyFile string `toml:"hmac_key_file"`
	// FSync is "every" (each record) or a duration such as "1s".
	FSync string `toml:"fsync"`
	// MaxSizeMB is the size at which the file is rotated (default 100).
	MaxSizeMB int `toml:"max_size_mb"`
	// FailOpen serves requests whose audit record could not be written;
	// by default they are refused with 503.
	FailOpen bool `toml:"fail_open"`
	// ChainKeyEnv or ChainKeyFile (one of them) supplies the key of the
	// record chain (HMAC-SHA-256) and of the checkpoints. It is separate
	// from the content key: whoever holds it can re-forge the trail, so
	// only moat and the verifier should read it. Default: the file
	// .moat-audit-chain.key next to the config, created (32 random bytes,
	// 0600) on first start when missing. At least 16 bytes.
	ChainKeyEnv  string `toml:"chain_key_env"`
	ChainKeyFile string `toml:"chain_key_file"`
	// CheckpointPath is where moat keeps its latest keyed checkpoint
	// (sequence number, head hash, time), away from the log; default
	// .moat-audit-checkpoint next to the config.
	CheckpointPath string `toml:"checkpoint_path"`
	// CheckpointInterval is how often a new checkpoint is written while
	// records arrive (default 1s): records cut from the end of the trail
	// go unnoticed only if they were written after the last checkpoint.
	CheckpointInterval Duration `toml:"checkpoint_interval"`
}

func (a *Audit) applyDefaults(c *Config) {
	if a.Path == "" {
		a.Path = "audit.jsonl"
	}
	a.Path = c.resolve(a.Path)
	if a.Content == "" {
		a.Content = "off"
	}
	if a.FSync == "" {
		a.FSync = "every"
	}
	if a.MaxSizeMB == 0 {
		a.MaxSizeMB = 100
	}
	if a.HMACKeyEnv == "" && a.HMACKeyFile == "" {
		a.HMACKeyEnv = "MOAT_AUDIT_HMAC_KEY"
	}
	a.HMACKeyFile = c.resolve(a.HMACKeyFile)
	if a.ChainKeyEnv == "" && a.ChainKeyFile == "" {
		a.ChainKeyFile = ".moat-audit-chain.key"
	}
	a.ChainKeyFile = c.resolve(a.ChainKeyFile)
	if a.CheckpointPath == "" {
		a.CheckpointPath = ".moat-audit-checkpoint"
	}
	a.CheckpointPath = c.resolve(a.CheckpointPath)
	if a.CheckpointInterval.Duration == 0 {
		a.CheckpointInterval.Duration = time.Second
	}
}

func (c *Config) validateAudit(p *problems) {
	a := &c.Audit
	switch a.Content {
	case "off", "hmac", "redacted", "full":
	default:
		p.add("audit.content", "must be \"off\", \"hmac\", \"redacted\" or \"full\", got %q", a.Content)
	}
	if a.FSync != "every" {
		var d Duration
		if err := d.UnmarshalText([]byte(a.FSync)); err != nil || d.Duration == 0 {
			p.add("audit.fsync", "must be \"every\" or a positive duration such as \"1s\", got %q", a.FSync)
		}
	}
	if a.MaxSizeMB < 1 {
		p.add("audit.max_size_mb", "must be positive")
	}
	if a.HMACKeyEnv != "" && a.HMACKeyFile != "" {
		p.add("audit", "set hmac_key_env or hmac_key_file, not both")
	}
	if a.ChainKeyEnv != "" && a.ChainKeyFile != "" {
		p.add("audit", "set chain_key_env or chain_key_file, not both")
	}
	if a.CheckpointPath != "" && a.CheckpointPath == a.Path {
		p.add("audit.checkpoint_path", "must not be the audit file itself")
	}
}
