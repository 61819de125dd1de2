// Package patterns compiles the regex lists of the deny-patterns and
// allow-patterns built-ins (Go RE2 syntax: linear time, no backtracking).
package patterns

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Rule is one compiled pattern.
type Rule struct {
	// Name is the configured name, or "#<index> <pattern>" when unnamed.
	Name string
	Re   *regexp.Regexp
}

// entry is one element of "patterns": a string, or {name, pattern}.
type entry struct {
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
}

func (e *entry) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		e.Pattern = s
		return nil
	}
	type plain entry
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return errors.New(`each pattern must be a string or {name, pattern}`)
	}
	*e = entry(p)
	return nil
}

type config struct {
	Patterns []entry `json:"patterns"`
}

// Cache compiles a config's "patterns" once per distinct config.
type Cache struct{ c cfgcache.Cache[[]Rule] }

// Rules returns the compiled rules of req's config. A missing or empty list
// and an invalid regex are errors naming the pattern.
func (c *Cache) Rules(req *abi.Request) ([]Rule, error) {
	return c.c.Get(req.Config, func([]byte) ([]Rule, error) {
		var cfg config
		if err := req.DecodeConfig(&cfg); err != nil {
			return nil, err
		}
		if len(cfg.Patterns) == 0 {
			return nil, errors.New(`config "patterns" is empty`)
		}
		rules := make([]Rule, len(cfg.Patterns))
		for i, e := range cfg.Patterns {
			name := e.Name
			if name == "" {
				name = fmt.Sprintf("#%d %q", i, e.Pattern)
			}
			if e.Pattern == "" {
				return nil, fmt.Errorf("pattern %s is empty", name)
			}
			re, err := regexp.Compile(e.Pattern)
			if err != nil {
				return nil, fmt.Errorf("compiling pattern %s: %w", name, err)
			}
			rules[i] = Rule{Name: name, Re: re}
		}
		return rules, nil
	})
}
