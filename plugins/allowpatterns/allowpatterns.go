// Package allowpatterns is the allow-patterns built-in: model output must
// match at least one of the configured regexes (Go RE2 syntax), else it is
// rejected. Anchor a pattern (^...$) to constrain the whole output.
//
// Config: patterns = ["regex", ...] or [{name = "...", pattern = "..."}].
// An empty list or an invalid regex rejects every call with a reason naming
// the pattern (fail closed).
package allowpatterns

import (
	"github.com/moat-gateway/moat/plugins/internal/patterns"
	"github.com/moat-gateway/moat/sdk/abi"
)

var cache patterns.Cache

// Output is the output-phase handler.
func Output(req abi.Request) abi.Verdict {
	rules, err := cache.Rules(&req)
	if err != nil {
		return abi.RejectVerdict("allow-patterns: " + err.Error())
	}
	for _, r := range rules {
		if r.Re.MatchString(req.Text) {
			return abi.AllowVerdict()
		}
	}
	return abi.RejectVerdict("allow-patterns: output matches none of the allowed patterns")
}
