package secretredact

import (
	"strings"

	"github.com/moat-gateway/moat/sdk/abi"
)

// Hold returns how many trailing bytes of text could still be redacted
// differently once more text follows: the text from the earliest position
// where a secret could still be starting or growing. Everything before it
// is final, whatever comes next. It is what the plugin reports as the
// verdict's hold on a streamed (partial) text.
//
// A secret can still change only where its scan reaches the end of the
// text, so the hold starts at the earliest of:
//   - the last run of non-blank bytes (a token, a JWT, a "-----BEGIN"
//     marker, a bare value: none holds a blank), and "Bearer " before it;
//   - the value of an assignment on the last line whose value is empty,
//     unquoted and running to the end, or quoted and not yet closed;
//   - a "-----BEGIN " on the last line (the header holds blanks);
//   - a finding that runs to the end (a PEM block without its END line).
func Hold(text string, ms []abi.Finding) int {
	n := len(text)
	p := n
	// The trailing word.
	w := n
	for w > 0 && !isBlank(text[w-1]) {
		w--
	}
	p = min(p, w)
	if w >= 7 && strings.EqualFold(text[w-7:w], "bearer ") {
		p = min(p, w-7)
	}
	// The last line's assignments and PEM header.
	ls := strings.LastIndexByte(text, '\n') + 1
	if b := strings.LastIndex(text[ls:], "-----BEGIN"); b >= 0 {
		p = min(p, ls+b)
	}
	for i := ls; i < n; i++ {
		if c := text[i]; (c == '=' || c == ':') && valueOpen(text, i) {
			p = min(p, i+1)
			break
		}
	}
	for _, m := range ms {
		if m.End >= n {
			p = min(p, m.Start)
		}
	}
	return n - p
}

// valueOpen reports whether sep is an assignment separator after a
// credential name whose value could still change with more text.
func valueOpen(text string, sep int) bool {
	p := sep
	for p > 0 && (text[p-1] == ' ' || text[p-1] == '\t') {
		p--
	}
	if p > 0 && (text[p-1] == '"' || text[p-1] == '\'') {
		p--
	}
	nameEnd := p
	for p > 0 && nameEnd-p < 64 && (isTokenByte(text[p-1]) || text[p-1] == '.') {
		p--
	}
	if nameKind(text[p:nameEnd]) == "" {
		return false
	}
	v := sep + 1
	for v < len(text) && (text[v] == ' ' || text[v] == '\t') {
		v++
	}
	if v >= len(text) {
		return true // no value yet
	}
	if q := text[v]; q == '"' || q == '\'' || q == '`' {
		// Open until its closing quote or the end of the line.
		return !strings.ContainsAny(text[v+1:], string(q)+"\n")
	}
	for e := v; e < len(text); e++ {
		if isValueStop(text[e]) {
			return false
		}
	}
	return true
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
