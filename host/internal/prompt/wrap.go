package prompt

import (
	"crypto/rand"
	"encoding/hex"
	"html"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultTag is the tag name used when Wrapper.Tag is empty.
const DefaultTag = "user_input"

// Wrapper wraps untrusted text in tags the text cannot close or forge.
// Its zero value wraps in <user_input> with DefaultLabel and no
// suffix; without a suffix only the escaping layer protects the tags (see
// the package documentation), so request paths should use NewWrapper.
type Wrapper struct {
	// Tag is the base tag name; "" means DefaultTag. It should consist of
	// letters, digits, '_' and '-' (config validates this); any other
	// character is replaced by '_'.
	Tag string
	// Label is the sentence placed before the wrapper by Block; {{tag}} is
	// replaced by the tag name. "" means DefaultLabel.
	Label string
	// Suffix is appended to Tag after '_' to make the tag name
	// unguessable; "" means none. Other characters than letters, digits,
	// '_' and '-' are replaced by '_'.
	Suffix string
}

// NewSuffix returns 8 random lowercase hex characters from crypto/rand.
func NewSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// NewWrapper returns a Wrapper with the given tag and label and a fresh
// random suffix that occurs in none of data under any normalisation or
// entity decoding; pass every piece of text the wrapper will wrap.
func NewWrapper(tag, label string, data ...string) Wrapper {
	return Wrapper{Tag: tag, Label: label, Suffix: freshSuffix(NewSuffix, data...)}
}

// freshSuffix draws suffixes from next until one is absent from the
// skeletons of data. After 8 collisions it uses two draws joined, which
// makes a further collision astronomically unlikely.
func freshSuffix(next func() string, data ...string) string {
	skels := make([]string, 0, 3*len(data))
	for _, d := range data {
		skels = appendSkeletons(skels, d)
	}
	for i := 0; ; i++ {
		s := next()
		if i >= 8 {
			s += next()
		}
		key := asciiAlnumLower(s)
		if key == "" {
			continue
		}
		clash := false
		for _, sk := range skels {
			if strings.Contains(sk, key) {
				clash = true
				break
			}
		}
		if !clash {
			return s
		}
	}
}

// appendSkeletons appends the readings of d a model might apply: NFKC,
// then HTML-decoded once and twice (each normalised again), each reduced
// to lowercase ASCII letters and digits.
func appendSkeletons(dst []string, d string) []string {
	v := norm.NFKC.String(d)
	for k := 0; k < 3; k++ {
		dst = append(dst, asciiAlnumLower(v))
		if k < 2 {
			u := html.UnescapeString(v)
			if u == v {
				break
			}
			v = norm.NFKC.String(u)
		}
	}
	return dst
}

// asciiAlnumLower keeps only ASCII letters and digits of s, lowercased.
// Dropping everything else (spaces, punctuation, zero-width and non-ASCII
// characters) joins their neighbours, which errs on the side of clashes.
func asciiAlnumLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	return b.String()
}

// TagName returns the tag name: Tag, or DefaultTag, followed by "_" and
// Suffix when Suffix is set.
func (w Wrapper) TagName() string {
	var b strings.Builder
	w.writeTagName(&b)
	return b.String()
}

func (w Wrapper) writeTagName(b *strings.Builder) {
	tag := w.Tag
	if tag == "" {
		tag = DefaultTag
	}
	writeName(b, tag)
	if w.Suffix != "" {
		b.WriteByte('_')
		writeName(b, w.Suffix)
	}
}

// writeName writes s with every byte that is not a letter, digit, '_' or
// '-' replaced by '_' (multi-byte characters become one '_' per byte).
func writeName(b *strings.Builder, s string) {
	if validName(s) {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !nameByte(c) {
			c = '_'
		}
		b.WriteByte(c)
	}
}

func nameByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return s != ""
}

// Instruction returns Label (or DefaultLabel) with every {{tag}}
// replaced by TagName.
func (w Wrapper) Instruction() string {
	label := w.Label
	if label == "" {
		label = DefaultLabel
	}
	return strings.ReplaceAll(label, "{{tag}}", w.TagName())
}

// Wrap returns "<TAG>\n" + Escape(text) + "\n</TAG>" where TAG is
// TagName: exactly one opening and one closing tag.
func (w Wrapper) Wrap(text string) string {
	var b strings.Builder
	n := len(w.Tag) + len(w.Suffix) + len(DefaultTag) + 1
	b.Grow(2*n + 6 + len(text) + len(text)/8 + 32)
	w.wrapTo(&b, text)
	return b.String()
}

func (w Wrapper) wrapTo(b *strings.Builder, text string) {
	b.WriteByte('<')
	w.writeTagName(b)
	b.WriteString(">\n")
	escapeTo(b, text)
	b.WriteString("\n</")
	w.writeTagName(b)
	b.WriteByte('>')
}

// Block returns Instruction, a newline and Wrap(text): what moat puts in
// place of one piece of user data.
func (w Wrapper) Block(text string) string {
	ins := w.Instruction()
	var b strings.Builder
	n := len(w.Tag) + len(w.Suffix) + len(DefaultTag) + 1
	b.Grow(len(ins) + 1 + 2*n + 6 + len(text) + len(text)/8 + 32)
	b.WriteString(ins)
	b.WriteByte('\n')
	w.wrapTo(&b, text)
	return b.String()
}

// Escape returns s with '&', '<' and '>' replaced by "&amp;", "&lt;" and
// "&gt;", characters that normalise to them or look like angle brackets
// replaced by hex character references ("&#xff1c;"), and invalid UTF-8
// bytes replaced by U+FFFD. html.UnescapeString inverts it for valid UTF-8.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8 + 16)
	escapeTo(&b, s)
	return b.String()
}

const hexDigits = "0123456789abcdef"

// escapeTo writes the escaped s to b in a single pass, copying runs of
// bytes that need no escaping in one call.
func escapeTo(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var rep string
			switch c {
			case '&':
				rep = "&amp;"
			case '<':
				rep = "&lt;"
			case '>':
				rep = "&gt;"
			default:
				i++
				continue
			}
			b.WriteString(s[last:i])
			b.WriteString(rep)
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(s[last:i])
			b.WriteString("\uFFFD")
		case bracketLike(r):
			b.WriteString(s[last:i])
			b.WriteString("&#x")
			for shift := 12; shift >= 0; shift -= 4 { // all listed runes are < 0x10000
				b.WriteByte(hexDigits[(r>>shift)&0xf])
			}
			b.WriteByte(';')
		default:
			i += size
			continue
		}
		i += size
		last = i
	}
	b.WriteString(s[last:])
}

// bracketLike reports whether r normalises (NFKC or NFKD) to a string
// containing '<', '>' or '&', or looks like an angle bracket.
func bracketLike(r rune) bool {
	switch r {
	// Normalise to '<', '>' or '&' (the complete list; see TestBracketLikeCoversNormalisation).
	case 0x226E, 0x226F, // ≮ ≯ (NFD: '<' or '>' + U+0338)
		0xFE60, 0xFE64, 0xFE65, // ﹠ ﹤ ﹥
		0xFF06, 0xFF1C, 0xFF1E: // ＆ ＜ ＞
		return true
	// Look-alikes.
	case 0x02C2, 0x02C3, // ˂ ˃
		0x1438, 0x1433, // ᐸ ᐳ
		0x2039, 0x203A, // ‹ ›
		0x2329, 0x232A, // 〈 〉
		0x276C, 0x276D, 0x276E, 0x276F, 0x2770, 0x2771, // ❬ ❭ ❮ ❯ ❰ ❱
		0x27E8, 0x27E9, // ⟨ ⟩
		0x29FC, 0x29FD, // ⧼ ⧽
		0x3008, 0x3009: // 〈 〉
		return true
	}
	return false
}
