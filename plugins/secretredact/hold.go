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
// The text after the hold is judged again later without what was
// released, so the hold also keeps the context a later match needs. A
// secret can still change only where its scan reaches the end of the text,
// so the hold starts at the earliest of:
//   - the last run of non-blank bytes (a token, a JWT, a "-----BEGIN"
//     marker, a bare value: none holds a blank), and "Bearer " before it;
//   - a credential name at the end, alone or with blanks and a quote after
//     it (its separator and value may follow);
//   - the name of an assignment on the last line whose value is empty,
//     unquoted and running to the end, or quoted and not yet closed;
//   - a "-----BEGIN " on the last line (the header holds blanks);
//   - an AWS access key less than 200 bytes from the end (its secret key
//     may follow);
//   - a finding that runs to the end (a PEM block without its END line),
//     and any finding reaching into the hold, with its assignment's name.
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
	if s, ok := credentialName(text, n); ok {
		p = min(p, s)
	}
	for i := ls; i < n; i++ {
		if c := text[i]; c == '=' || c == ':' {
			if s, ok := credentialName(text, i); ok && valueOpen(text, i) {
				p = min(p, s)
				break
			}
		}
	}
	for _, m := range ms {
		if m.End >= n || m.Rule == "aws-access-key" && n-m.End < 200 {
			p = min(p, m.Start)
		}
	}
	// A finding reaching into the hold is held whole, with the name that
	// made it a credential; and the hold starts at a word start, since a
	// token is matched only there. Either may move it to an earlier one.
	for moved := true; moved && p < n; {
		moved = false
		for q := p; q > 0 && (isTokenByte(text[q-1]) || text[q-1] == '/' || text[q-1] == '+' || text[q-1] == '.'); {
			q--
			p, moved = q, true
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.End < p {
				continue
			}
			if m.Start < p {
				p, moved = m.Start, true
			}
			if s, ok := nameBefore(text, m.Start); ok && s < p {
				p, moved = s, true
			}
		}
	}
	return n - p
}

// nameBefore returns where the credential name of an assignment whose
// value starts at v starts.
func nameBefore(text string, v int) (int, bool) {
	q := v
	if q > 0 && (text[q-1] == '"' || text[q-1] == '\'' || text[q-1] == '`') {
		q--
	}
	for q > 0 && (text[q-1] == ' ' || text[q-1] == '\t') {
		q--
	}
	if q == 0 || (text[q-1] != '=' && text[q-1] != ':') {
		return 0, false
	}
	return credentialName(text, q-1)
}

// credentialName looks back from end over blanks, a quote and a name, as
// assignment does from its separator, and returns where a name that makes
// an assignment a credential starts.
func credentialName(text string, end int) (int, bool) {
	start, nameEnd := nameSpan(text, end)
	return start, nameKind(text[start:nameEnd]) != ""
}

// nameSpan looks back from end over blanks, a closing quote and a name
// (at most 64 token bytes or dots), and returns where the name starts and
// ends.
func nameSpan(text string, end int) (start, nameEnd int) {
	p := end
	for p > 0 && (text[p-1] == ' ' || text[p-1] == '\t') {
		p--
	}
	if p > 0 && (text[p-1] == '"' || text[p-1] == '\'') {
		p--
	}
	nameEnd = p
	for p > 0 && nameEnd-p < 64 && (isTokenByte(text[p-1]) || text[p-1] == '.') {
		p--
	}
	return p, nameEnd
}

// valueOpen reports whether the value after the separator sep could still
// change with more text.
func valueOpen(text string, sep int) bool {
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
