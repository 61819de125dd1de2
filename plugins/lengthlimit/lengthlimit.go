// Package lengthlimit is the length-limit built-in: it rejects text longer
// than max_chars characters (runes) or max_bytes bytes of UTF-8.
package lengthlimit

import (
	"fmt"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Config is the plugin's config table. At least one limit must be set; a
// zero limit is not checked.
type Config struct {
	MaxChars int `json:"max_chars"`
	MaxBytes int `json:"max_bytes"`
}

var configs cfgcache.Cache[Config]

func loadConfig(req *abi.Request) (Config, error) {
	return configs.Get(req.Config, func([]byte) (Config, error) {
		var c Config
		if err := req.DecodeConfig(&c); err != nil {
			return c, err
		}
		switch {
		case c.MaxChars < 0 || c.MaxBytes < 0:
			return c, fmt.Errorf("max_chars and max_bytes must not be negative")
		case c.MaxChars == 0 && c.MaxBytes == 0:
			return c, fmt.Errorf("set max_chars or max_bytes")
		}
		return c, nil
	})
}

// Input is the input-phase handler.
func Input(req abi.Request) abi.Verdict { return judge(req) }

// Output is the output-phase handler.
func Output(req abi.Request) abi.Verdict { return judge(req) }

func judge(req abi.Request) abi.Verdict {
	c, err := loadConfig(&req)
	if err != nil {
		return abi.RejectVerdict("length-limit: " + err.Error())
	}
	if c.MaxBytes > 0 && len(req.Text) > c.MaxBytes {
		return abi.RejectVerdict(fmt.Sprintf("length-limit: %d bytes exceeds max_bytes %d", len(req.Text), c.MaxBytes))
	}
	// Counting runes is only needed when the byte length could exceed it.
	if c.MaxChars > 0 && len(req.Text) > c.MaxChars {
		if n := utf8.RuneCountInString(req.Text); n > c.MaxChars {
			return abi.RejectVerdict(fmt.Sprintf("length-limit: %d characters exceeds max_chars %d", n, c.MaxChars))
		}
	}
	return abi.AllowVerdict()
}
