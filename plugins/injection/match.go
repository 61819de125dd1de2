package injection

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// token is one word of the text, lower-cased and with common Latin accents
// folded, pointing back at its byte range in the original text.
type token struct {
	word       string // folded; a slice of the shared folded buffer
	start, end int    // byte offsets in the original text
}

// tokenizer holds the reusable buffers for one call.
type tokenizer struct {
	buf  []byte
	toks []token
	// wide is set when the text has a lead byte of U+3000-U+9FFF (scripts
	// written without spaces, which the pair rules match).
	wide bool
}

var tokPool = sync.Pool{New: func() any { return &tokenizer{buf: make([]byte, 0, 4096), toks: make([]token, 0, 1024)} }}

// tokenize splits text into words: runs of letters and digits (apostrophes,
// hyphens and everything else separate words). Letters are lower-cased and
// accents folded (é → e, ß → ss) so rules are written once without accents.
func (tz *tokenizer) tokenize(text string) {
	tz.buf = tz.buf[:0]
	tz.toks = tz.toks[:0]
	tz.wide = false
	// Reserve capacity so the strings taken from buf stay valid: the folded
	// text is never longer than twice the original.
	if cap(tz.buf) < 2*len(text) {
		tz.buf = make([]byte, 0, 2*len(text))
	}
	wordStart, bufStart := -1, 0
	flush := func(end int) {
		if wordStart >= 0 {
			w := tz.buf[bufStart:len(tz.buf)]
			tz.toks = append(tz.toks, token{word: unsafeString(w), start: wordStart, end: end})
			wordStart = -1
		}
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if asciiFold[c] == 0 {
				flush(i)
				i++
				continue
			}
			// A run of ASCII letters and digits at once.
			j, upper := i, false
			for j < len(text) && text[j] < utf8.RuneSelf && asciiFold[text[j]] != 0 {
				upper = upper || text[j]-'A' < 26
				j++
			}
			if wordStart < 0 && !upper && (j == len(text) || text[j] < utf8.RuneSelf) {
				// A whole lower-case ASCII word is its own folded form.
				tz.toks = append(tz.toks, token{word: text[i:j], start: i, end: j})
				i = j
				continue
			}
			if wordStart < 0 {
				wordStart, bufStart = i, len(tz.buf)
			}
			for ; i < j; i++ {
				tz.buf = append(tz.buf, asciiFold[text[i]])
			}
			continue
		}
		if c >= 0xE3 && c <= 0xE9 {
			// Every byte >= 0x80 not inside a valid sequence is read here,
			// and continuation bytes are below 0xC0: no lead byte is missed.
			tz.wide = true
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) {
			flush(i)
			i += size
			continue
		}
		if isHan(r) {
			// Scripts without spaces are matched by substring, not by word.
			flush(i)
			i += size
			continue
		}
		if wordStart < 0 {
			wordStart, bufStart = i, len(tz.buf)
		}
		tz.buf = appendFolded(tz.buf, r)
		i += size
	}
	flush(len(text))
}

// asciiFold maps an ASCII letter or digit to its lower-case form and every
// other ASCII byte to 0 (a separator).
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c
	}
	for c := byte('a'); c <= 'z'; c++ {
		t[c] = c
		t[c-'a'+'A'] = c
	}
	return t
}()

func isHan(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

// appendFolded appends r lower-cased, with Latin accents and marks removed.
func appendFolded(b []byte, r rune) []byte {
	if unicode.Is(unicode.Mn, r) {
		return b // combining accent
	}
	switch r {
	case 'ß':
		return append(b, 's', 's')
	case 'æ', 'Æ':
		return append(b, 'a', 'e')
	case 'œ', 'Œ':
		return append(b, 'o', 'e')
	case 'ø', 'Ø':
		return append(b, 'o')
	}
	if r >= 0xC0 && r <= 0x17F {
		if f, ok := latinFold[unicode.ToLower(r)]; ok {
			return append(b, f)
		}
	}
	return utf8.AppendRune(b, unicode.ToLower(r))
}

var latinFold = func() map[rune]byte {
	m := map[rune]byte{}
	for f, rs := range map[byte]string{
		'a': "àáâãäåāăą", 'c': "çćĉċč", 'd': "ďđ", 'e': "èéêëēĕėęě", 'g': "ĝğġģ",
		'i': "ìíîïĩīĭįı", 'n': "ñńņňŉ", 'o': "òóôõöōŏő", 'u': "ùúûüũūŭůűų",
		'y': "ýÿŷ", 's': "śŝşš", 'z': "źżž", 'l': "ĺļľŀł", 'r': "ŕŗř", 't': "ţťŧ",
	} {
		for _, r := range rs {
			m[r] = f
		}
	}
	return m
}()

// slot is one position of a word rule: the token must equal one of words or
// start with one of prefixes, after skipping at most gap other tokens.
type slot struct {
	words    []string
	prefixes []string
	exact    []string // case-sensitive forms checked against the original text
	gap      int
}

func (s *slot) match(t token, text string) bool {
	for _, w := range s.words {
		if t.word == w {
			return true
		}
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(t.word, p) {
			return true
		}
	}
	for _, e := range s.exact {
		if text[t.start:t.end] == e {
			return true
		}
	}
	return false
}

// wordRule is a compiled rule over tokens.
type wordRule struct {
	id     int
	cat    category
	weight float64
	src    string
	slots  []slot
}

// parseWordRule compiles a pattern such as
// "ignore|disregard ~3 instructions|rules*": space-separated slots, "|"
// between alternatives, a trailing "*" for a prefix, a leading "=" for a
// case-sensitive word, and "~N" allowing up to N other tokens before the
// next slot.
func parseWordRule(src string) []slot {
	var slots []slot
	gap := 0
	for _, f := range strings.Fields(src) {
		if f[0] == '~' {
			n := 0
			for _, d := range f[1:] {
				n = n*10 + int(d-'0')
			}
			gap = n
			continue
		}
		s := slot{gap: gap}
		gap = 0
		for _, alt := range strings.Split(f, "|") {
			switch {
			case strings.HasPrefix(alt, "="):
				s.exact = append(s.exact, alt[1:])
			case strings.HasSuffix(alt, "*"):
				s.prefixes = append(s.prefixes, strings.TrimSuffix(alt, "*"))
			default:
				s.words = append(s.words, alt)
			}
		}
		slots = append(slots, s)
	}
	return slots
}

// matchAt reports whether rule r matches starting at token i, returning the
// index of the last matched token.
func (r *wordRule) matchAt(toks []token, i int, text string) (int, bool) {
	return matchSlots(r.slots[1:], toks, i, text)
}

func matchSlots(slots []slot, toks []token, last int, text string) (int, bool) {
	if len(slots) == 0 {
		return last, true
	}
	s := &slots[0]
	for j := last + 1; j <= last+1+s.gap && j < len(toks); j++ {
		if s.match(toks[j], text) {
			if end, ok := matchSlots(slots[1:], toks, j, text); ok {
				return end, true
			}
		}
	}
	return 0, false
}

// pairRule matches scripts written without spaces: first, then second
// within window bytes after it.
type pairRule struct {
	id            int
	cat           category
	weight        float64
	first, second string
	window        int
}

func (p *pairRule) find(text string) (start, end int, ok bool) {
	off := 0
	for {
		i := strings.Index(text[off:], p.first)
		if i < 0 {
			return 0, 0, false
		}
		i += off
		after := i + len(p.first)
		if p.second == "" {
			return i, after, true
		}
		lim := min(after+p.window, len(text))
		if j := strings.Index(text[after:lim], p.second); j >= 0 {
			return i, after + j + len(p.second), true
		}
		off = after
	}
}
