// Package piiredact is the pii-redact built-in: it replaces personal data in
// text with placeholders, on input and on output.
//
//   - email addresses → [EMAIL]
//   - phone numbers → [PHONE]: "+" international numbers (8-15 digits),
//     "00"-prefixed international numbers, North American numbers with
//     separators ((555) 234-5678, 555-234-5678, 1 555 234 5678), and
//     national numbers starting with 0 written in three or more groups
//     (06 12 34 56 78, 020 7946 0958); bare digit runs, years, dates and
//     amounts are not phones;
//   - payment card numbers of 13-19 digits passing the Luhn check → [CARD];
//   - IBANs passing the ISO 7064 mod-97 check → [IBAN];
//   - US social security numbers written 123-45-6789 (valid area, group
//     and serial) → [SSN].
//
// The scanner is hand-written (no regexp) and allocates nothing for text
// without a match. Redact is exported for the audit log.
package piiredact

import (
	"strings"

	"github.com/moat-gateway/moat/plugins/internal/redaction"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Input is the input-phase handler. It takes no config.
func Input(req abi.Request) abi.Verdict { return judge(req.Text) }

// Output is the output-phase handler. It takes no config.
func Output(req abi.Request) abi.Verdict { return judge(req.Text) }

func judge(text string) abi.Verdict {
	return redaction.Verdict(text, Find(text), placeholder, "pii-redact: redacted personal data")
}

// Redact returns text with every match replaced by its placeholder.
func Redact(text string) string { return redaction.Replace(text, Find(text), placeholder) }

// Find returns the matches in text, sorted and not overlapping; Rule is the
// kind: email, phone, card, iban or ssn. It returns nil when there is none.
func Find(text string) []abi.Finding {
	var ms []abi.Finding
	last := 0 // end of the last match
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '@':
			if s, e, ok := email(text, i); ok && s >= last {
				ms = append(ms, abi.Finding{Rule: "email", Start: s, End: e})
				last, i = e, e
				continue
			}
		case isDigit(c) || c == '+' || c == '(':
			if i > 0 && (isAlnum(text[i-1]) || text[i-1] == '.' || text[i-1] == ',' || text[i-1] == '@') {
				break
			}
			if s, e, kind := numeric(text, i); kind != "" {
				ms = append(ms, abi.Finding{Rule: kind, Start: s, End: e})
				last, i = e, e
				continue
			}
			// Skip the rest of this number so a tail is not read as a new one.
			j := i + 1
			for j < len(text) && isDigit(text[j]) {
				j++
			}
			i = j
			continue
		case 'A' <= c && c <= 'Z':
			if i > 0 && isAlnum(text[i-1]) {
				break
			}
			if e, ok := iban(text, i); ok {
				ms = append(ms, abi.Finding{Rule: "iban", Start: i, End: e})
				last, i = e, e
				continue
			}
		}
		i++
	}
	return ms
}

var placeholders = map[string]string{"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "iban": "[IBAN]", "ssn": "[SSN]"}

// placeholder is what replaces a finding of a rule.
func placeholder(rule string) string { return placeholders[rule] }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) || c >= 0x80 }

// email matches an address around the '@' at at.
func email(text string, at int) (start, end int, ok bool) {
	s := at
	for s > 0 && at-s < 64 && isLocal(text[s-1]) {
		s--
	}
	for s < at && text[s] == '.' {
		s++
	}
	if s == at {
		return 0, 0, false
	}
	e := at + 1
	lastDot := -1
	for e < len(text) && e-at <= 253 && (isAlnum(text[e]) && text[e] < 0x80 || text[e] == '-' || text[e] == '.') {
		if text[e] == '.' {
			if text[e-1] == '.' || text[e-1] == '@' {
				break
			}
			lastDot = e
		}
		e++
	}
	for e > at+1 && (text[e-1] == '.' || text[e-1] == '-') {
		e--
	}
	lastDot = strings.LastIndexByte(text[at+1:e], '.')
	if lastDot >= 0 {
		lastDot += at + 1
	}
	if lastDot < 0 || lastDot >= e-2 {
		return 0, 0, false // no dot, or a TLD shorter than 2
	}
	for k := lastDot + 1; k < e; k++ {
		if !isAlpha(text[k]) {
			return 0, 0, false
		}
	}
	return s, e, true
}

func isLocal(c byte) bool {
	return isAlnum(c) && c < 0x80 || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}
