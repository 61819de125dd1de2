// Package jsonstr appends Go strings as JSON strings without reflection or
// allocation, for the hot paths that write JSON by hand (audit records,
// text deltas relayed to clients). It is a leaf on the standard library.
package jsonstr

import (
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Append appends s to b quoted as encoding/json quotes it: quotes,
// backslashes and control characters escaped (\b, \f, \n, \r, \t by name,
// others as \u00XX), U+2028 and U+2029 escaped for JavaScript, invalid
// UTF-8 replaced by \ufffd. With html, <, > and & are escaped too, as
// encoding/json's default (json.Marshal) does; without it they are written
// as they are, as an encoder with SetEscapeHTML(false) does.
func Append(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// HasLineSeparator reports whether s holds U+2028 or U+2029, the two
// characters Append escapes although JSON allows them raw. Text without
// the byte 0xE2 that starts both is answered in one vectorized search.
func HasLineSeparator(s string) bool {
	for {
		i := strings.IndexByte(s, 0xE2)
		if i < 0 || i+2 >= len(s) {
			return false
		}
		if s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
			return true
		}
		s = s[i+1:]
	}
}
