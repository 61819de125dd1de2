package config

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Plugin is one sanitizer or validator: a .wasm file pinned by hash, or a
// built-in.
type Plugin struct {
	Name string `toml:"name"`
	// Path is a .wasm file; SHA256 pins its content.
	Path   string `toml:"path"`
	SHA256 string `toml:"sha256"`
	// Builtin names a plugin shipped in the binary.
	Builtin string `toml:"builtin"`
	// Runtime for built-ins: "native" (default: the same SDK source compiled
	// into moat) or "wasm" (the embedded module, in the sandbox). Plugins
	// from a path always run in the sandbox.
	Runtime string `toml:"runtime"`
	// Config is passed to every call as the request's "config".
	Config map[string]any `toml:"config"`
	// Limits.
	MemoryMB       int `toml:"memory_mb"`
	TimeoutMS      int `toml:"timeout_ms"`
	MaxOutputBytes int `toml:"max_output_bytes"`
	// OnError is "reject" (default, fail closed) or "skip".
	OnError string `toml:"on_error"`
	// Isolation is "pool" (default) or "fresh" (a new instance per call).
	Isolation string `toml:"isolation"`
	// PoolSize bounds warm instances; RecycleCalls and RecycleMemoryMB
	// retire an instance after that many calls or that much memory.
	PoolSize        int `toml:"pool_size"`
	RecycleCalls    int `toml:"recycle_calls"`
	RecycleMemoryMB int `toml:"recycle_memory_mb"`
	// Streaming is "buffer" (default: needs the whole text) or
	// "incremental" (can judge text as it streams, with HoldBack bytes kept
	// back so a match split across deltas is still caught).
	Streaming string `toml:"streaming"`
	HoldBack  int    `toml:"hold_back"`
	// MaxConcurrency bounds the plugin's calls in flight; 0 takes one less
	// than GOMAXPROCS (at least 1). QueueTimeoutMS bounds the wait for a
	// slot, past which the call fails with cause "saturated" (default 50).
	// Sandboxed plugins only: native built-ins are not throttled.
	MaxConcurrency int `toml:"max_concurrency"`
	QueueTimeoutMS int `toml:"queue_timeout_ms"`
	// Breaker quarantines a sandboxed plugin after consecutive failures.
	Breaker Breaker `toml:"breaker"`
}

// Breaker is a plugin's circuit breaker: after Failures consecutive
// failures (timeouts, traps, bad verdicts) calls fail at once with cause
// "quarantined" for Cooldown, then one probe call decides. Failures = -1
// turns it off.
type Breaker struct {
	Failures int      `toml:"failures"`
	Cooldown Duration `toml:"cooldown"`
}

// Sandbox bounds all sandboxed plugins together.
type Sandbox struct {
	// MaxConcurrency caps the calls executing guest code at once across all
	// plugins; 0 takes one less than GOMAXPROCS (at least 1).
	MaxConcurrency int `toml:"max_concurrency"`
	// MaxMemoryMB caps the linear memory of every instance of every plugin
	// together (default 1024); past it a new instance or a memory.grow
	// fails at once.
	MaxMemoryMB int `toml:"max_memory_mb"`
}

// ResolvedPath returns Path relative to the config file.
func (c *Config) ResolvedPath(pl *Plugin) string { return c.resolve(pl.Path) }

func (pl *Plugin) applyDefaults() {
	if pl.MemoryMB == 0 {
		pl.MemoryMB = 64
	}
	if pl.TimeoutMS == 0 {
		pl.TimeoutMS = 100
	}
	if pl.MaxOutputBytes == 0 {
		pl.MaxOutputBytes = 4 << 20
	}
	if pl.OnError == "" {
		pl.OnError = "reject"
	}
	if pl.Isolation == "" {
		pl.Isolation = "pool"
	}
	if pl.PoolSize == 0 {
		pl.PoolSize = 4
	}
	if pl.RecycleCalls == 0 {
		pl.RecycleCalls = 10000
	}
	if pl.RecycleMemoryMB == 0 {
		pl.RecycleMemoryMB = pl.MemoryMB / 2
	}
	if pl.Runtime == "" {
		if pl.Builtin != "" {
			pl.Runtime = "native"
		} else {
			pl.Runtime = "wasm"
		}
	}
	if pl.Streaming == "" {
		pl.Streaming = "buffer"
	}
	if pl.HoldBack == 0 {
		pl.HoldBack = 256
	}
	if pl.QueueTimeoutMS == 0 {
		pl.QueueTimeoutMS = 50
	}
	if pl.Breaker.Failures == 0 {
		pl.Breaker.Failures = 5
	}
	if pl.Breaker.Cooldown.Duration == 0 {
		pl.Breaker.Cooldown.Duration = 30 * time.Second
	}
}

func (c *Config) validatePlugins(p *problems) {
	seen := map[string]bool{}
	for i := range c.Plugins {
		pl := &c.Plugins[i]
		key := fmt.Sprintf("plugins[%d]", i)
		if pl.Name == "" {
			p.add(key+".name", "is required")
		} else {
			key = fmt.Sprintf("plugins[%q]", pl.Name)
			if seen[pl.Name] {
				p.add(key+".name", "duplicate plugin name")
			}
			seen[pl.Name] = true
		}
		switch {
		case pl.Path == "" && pl.Builtin == "":
			p.add(key, "set path (with sha256) or builtin")
		case pl.Path != "" && pl.Builtin != "":
			p.add(key, "set path or builtin, not both")
		case pl.Path != "":
			if b, err := hex.DecodeString(pl.SHA256); err != nil || len(b) != 32 {
				p.add(key+".sha256", "a 64-hex-character pin is required for a plugin from a path (`sha256sum %s`)", pl.Path)
			}
			if pl.Runtime != "wasm" {
				p.add(key+".runtime", "plugins from a path always run as \"wasm\"")
			}
		}
		switch pl.Runtime {
		case "native", "wasm":
		default:
			p.add(key+".runtime", "must be \"native\" or \"wasm\", got %q", pl.Runtime)
		}
		switch pl.OnError {
		case "reject", "skip":
		default:
			p.add(key+".on_error", "must be \"reject\" or \"skip\", got %q", pl.OnError)
		}
		switch pl.Isolation {
		case "pool", "fresh":
		default:
			p.add(key+".isolation", "must be \"pool\" or \"fresh\", got %q", pl.Isolation)
		}
		switch pl.Streaming {
		case "buffer", "incremental":
		default:
			p.add(key+".streaming", "must be \"buffer\" or \"incremental\", got %q", pl.Streaming)
		}
		if pl.MemoryMB < 1 || pl.MemoryMB > 4096 {
			p.add(key+".memory_mb", "must be between 1 and 4096")
		}
		if pl.TimeoutMS < 1 {
			p.add(key+".timeout_ms", "must be positive")
		}
		if pl.MaxOutputBytes < 1 {
			p.add(key+".max_output_bytes", "must be positive")
		}
		if pl.PoolSize < 1 {
			p.add(key+".pool_size", "must be positive")
		}
		if pl.MaxConcurrency < 0 {
			p.add(key+".max_concurrency", "must be positive (or 0 for the default)")
		}
		if pl.QueueTimeoutMS < 0 {
			p.add(key+".queue_timeout_ms", "must be positive")
		}
		if pl.Breaker.Failures < -1 {
			p.add(key+".breaker.failures", "must be positive, or -1 to turn the breaker off")
		}
	}
	if c.Sandbox.MaxConcurrency < 0 {
		p.add("sandbox.max_concurrency", "must be positive (or 0 for the default)")
	}
	if c.Sandbox.MaxMemoryMB < 0 {
		p.add("sandbox.max_memory_mb", "must be positive")
	}
	for _, name := range c.Pipeline.Input {
		c.checkPluginRef(p, "pipeline.input", name)
	}
	for _, name := range c.Pipeline.Output {
		c.checkPluginRef(p, "pipeline.output", name)
	}
}

func (c *Config) checkPluginRef(p *problems, key, name string) {
	if _, ok := c.Plugin(name); !ok {
		p.add(key, "names plugin %q, which no [[plugins]] block defines", name)
	}
}
