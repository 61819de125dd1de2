// Package invisible classifies characters that render as nothing: the
// format characters (category Cf: zero-width spaces and joiners, bidi
// controls, tag characters, the BOM, ...), variation selectors, and the
// other default-ignorable code points text smuggling uses.
package invisible

import "unicode"

// Is reports whether r is invisible: category Cf, a variation selector, a
// control character other than tab, newline and carriage return, or one of
// the other default-ignorable code points (combining grapheme joiner, Hangul
// fillers, Khmer inherent vowels, Mongolian free variation selectors).
func Is(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\t' && r != '\n' && r != '\r'
	case r < 0x7F:
		return false
	case r <= 0x9F:
		return true // DEL and C1 controls
	case r < 0x0600:
		return r == 0x00AD || r == 0x034F // fast path: Latin, Greek, Cyrillic, Hebrew
	case r >= 0x2100 && r < 0xFE00:
		return r == 0x3164 // fast path: symbols, CJK, Hangul (no Cf here)
	case r == 0x034F, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5,
		r >= 0x180B && r <= 0x180F, r == 0x3164, r == 0xFFA0:
		return true
	case IsVariationSelector(r):
		return true
	case r >= 0xFFF0 && r <= 0xFFF8, r >= 0xE0000 && r <= 0xE0FFF && !unicode.Is(unicode.Co, r):
		return true // unassigned specials and the tag/ignorable plane block
	}
	return unicode.Is(unicode.Cf, r)
}

// IsVariationSelector reports whether r is one of VS1-VS256.
func IsVariationSelector(r rune) bool {
	return r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF
}
