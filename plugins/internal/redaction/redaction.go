// Package redaction is what the redacting built-ins (pii-redact,
// secret-redact) share: turning a scanner's findings into a verdict or a
// redacted text.
package redaction

import (
	"strings"

	"github.com/moat-gateway/moat/sdk/abi"
)

// Label gives the placeholder that replaces a finding of a rule.
type Label func(rule string) string

// Verdict allows text without findings; otherwise it modifies the text,
// replacing each finding with its label, and carries the findings.
func Verdict(text string, ms []abi.Finding, label Label, reason string) abi.Verdict {
	if len(ms) == 0 {
		return abi.AllowVerdict()
	}
	v := abi.ModifyVerdict(Replace(text, ms, label), reason)
	v.Findings = ms
	return v
}

// Replace returns text with each finding (sorted, not overlapping) replaced
// by its label; text itself when there is none.
func Replace(text string, ms []abi.Finding, label Label) string {
	if len(ms) == 0 {
		return text
	}
	var sb strings.Builder
	sb.Grow(len(text))
	prev := 0
	for _, m := range ms {
		sb.WriteString(text[prev:m.Start])
		sb.WriteString(label(m.Rule))
		prev = m.End
	}
	sb.WriteString(text[prev:])
	return sb.String()
}
