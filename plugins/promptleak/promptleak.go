// Package promptleak is the prompt-leak built-in: it rejects model output
// that contains a configured secret or the request's canary.
//
// Config: secrets = ["...", ...] and canary = "..." (the host sets canary per
// request). Matching is case-insensitive and ignores whitespace and
// invisible characters (zero-width, bidi, tags) anywhere, and reads
// fullwidth ASCII as ASCII, so "C A N A R Y", "can\u200bary" and "ｃａｎａｒｙ"
// all match "canary". A needle must keep at least 4 characters after that
// folding. With neither secrets nor a canary every call is rejected (fail
// closed: the plugin was configured to protect something it was not given).
package promptleak

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/plugins/internal/invisible"
	"github.com/moat-gateway/moat/sdk/abi"
)

// MinNeedle is the shortest folded secret or canary accepted.
const MinNeedle = 4

type config struct {
	Secrets []string `json:"secrets"`
	Canary  string   `json:"canary"`
}

// needle is one folded secret; name says which (never the secret itself).
type needle struct {
	folded []byte
	name   string
}

var configs cfgcache.Cache[[]needle]

func load(req *abi.Request) ([]needle, error) {
	return configs.Get(req.Config, func([]byte) ([]needle, error) {
		var c config
		if err := req.DecodeConfig(&c); err != nil {
			return nil, err
		}
		var ns []needle
		add := func(s, name string) error {
			f := fold(nil, s)
			if utf8.RuneCount(f) < MinNeedle {
				return fmt.Errorf("%s is shorter than %d characters", name, MinNeedle)
			}
			ns = append(ns, needle{folded: f, name: name})
			return nil
		}
		for i, s := range c.Secrets {
			if err := add(s, fmt.Sprintf("secret #%d", i)); err != nil {
				return nil, err
			}
		}
		if c.Canary != "" {
			if err := add(c.Canary, "the canary"); err != nil {
				return nil, err
			}
		}
		if len(ns) == 0 {
			return nil, errors.New("nothing to check: configure secrets or a canary")
		}
		return ns, nil
	})
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

// Output is the output-phase handler.
func Output(req abi.Request) abi.Verdict {
	ns, err := load(&req)
	if err != nil {
		return abi.RejectVerdict("prompt-leak: " + err.Error())
	}
	bp := bufPool.Get().(*[]byte)
	text := fold((*bp)[:0], req.Text)
	defer func() { *bp = text[:0]; bufPool.Put(bp) }()
	for _, n := range ns {
		if bytes.Contains(text, n.folded) {
			return abi.RejectVerdict("prompt-leak: output contains " + n.name)
		}
	}
	return abi.AllowVerdict()
}

// fold appends s to dst lower-cased, without whitespace or invisible
// characters, with fullwidth ASCII read as ASCII.
func fold(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c < 0x20 || c == 0x7F:
				continue
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) || invisible.Is(r) {
			continue
		}
		if r >= 0xFF01 && r <= 0xFF5E {
			r -= 0xFEE0
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}
