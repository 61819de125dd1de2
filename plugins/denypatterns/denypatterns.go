// Package denypatterns is the deny-patterns built-in: it rejects text that
// matches any of the configured regexes (Go RE2 syntax), naming the rule.
//
// Config: patterns = ["(?i)regex", ...] or [{name = "...", pattern = "..."}].
// An empty list or an invalid regex rejects every call with a reason naming
// the pattern (fail closed).
package denypatterns

import (
	"github.com/moat-gateway/moat/plugins/internal/patterns"
	"github.com/moat-gateway/moat/sdk/abi"
)

var cache patterns.Cache

// Input is the input-phase handler.
func Input(req abi.Request) abi.Verdict { return judge(req) }

// Output is the output-phase handler (the same check on model output).
func Output(req abi.Request) abi.Verdict { return judge(req) }

func judge(req abi.Request) abi.Verdict {
	rules, err := cache.Rules(&req)
	if err != nil {
		return abi.RejectVerdict("deny-patterns: " + err.Error())
	}
	for _, r := range rules {
		if loc := r.Re.FindStringIndex(req.Text); loc != nil {
			v := abi.RejectVerdict("deny-patterns: text matches " + r.Name)
			v.Findings = []abi.Finding{{Rule: r.Name, Start: loc[0], End: loc[1]}}
			return v
		}
	}
	return abi.AllowVerdict()
}
