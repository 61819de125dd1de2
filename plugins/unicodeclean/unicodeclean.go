// Package unicodeclean is the unicode-clean built-in: it removes characters
// that render as nothing but that a model still reads, then normalizes the
// text to NFKC.
//
// Removed: Unicode tag characters (U+E0000-E007F, "ASCII smuggling"),
// zero-width characters (U+200B-U+200D, U+2060, U+FEFF), bidi controls
// (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), every other
// format character (category Cf), control characters other than tab,
// newline and carriage return, variation selectors and the other
// default-ignorable fillers (see package invisible).
//
// Kept, because ordinary text needs them and they carry at most a bit or
// two per visible character:
//   - a zero-width joiner between two emoji (👩‍💻, 🏳️‍🌈), or between two
//     letters of a joining script (Arabic, Syriac, the Indic scripts);
//   - a zero-width non-joiner between two letters of a joining script
//     (Persian orthography needs it);
//   - one VS15/VS16 (U+FE0E/U+FE0F, text or emoji presentation) right after
//     a visible character (❤️); runs of selectors, which encode hidden
//     bytes, go;
//   - the tag sequences of the three subdivision flags (🏴 + gbeng, gbsct,
//     gbwls + cancel tag).
//
// NFKC folds compatibility forms (fullwidth and mathematical letters,
// ligatures, superscripts), which are how detectors are evaded. By default
// (config normalize = "letters") it folds only letters, digits and marks,
// and punctuation, symbols and spaces whose folded form could build a
// chat-template marker (＜ ＞ ｜ ﹤ and the like); ordinary punctuation that
// a writer chose ("…", non-breaking spaces, the fullwidth punctuation of
// CJK typography) reaches the model as written. normalize = "nfkc" folds
// everything NFKC folds ("…" to "..."), except CJK punctuation and the
// ideographic space; normalize = "none" only removes invisible characters.
// The verdict is modify only when the text actually changed.
package unicodeclean

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/invisible"
	"github.com/moat-gateway/moat/sdk/abi"
	"golang.org/x/text/unicode/norm"
)

// Normalization modes (config "normalize").
const (
	NormalizeLetters = "letters"
	NormalizeNFKC    = "nfkc"
	NormalizeNone    = "none"
)

// Config is the plugin's config table.
type Config struct {
	// Normalize is NormalizeLetters (the default), NormalizeNFKC or
	// NormalizeNone.
	Normalize string `json:"normalize"`
}

// Input is the input-phase handler.
func Input(req abi.Request) abi.Verdict {
	var cfg Config
	if err := req.DecodeConfig(&cfg); err != nil {
		return abi.RejectVerdict("unicode-clean: " + err.Error())
	}
	mode := cfg.Normalize
	switch mode {
	case "":
		mode = NormalizeLetters
	case NormalizeLetters, NormalizeNFKC, NormalizeNone:
	default:
		return abi.RejectVerdict(fmt.Sprintf("unicode-clean: normalize must be %q, %q or %q, got %q", NormalizeLetters, NormalizeNFKC, NormalizeNone, mode))
	}
	out, findings := cleanMode(req.Text, mode)
	if out == req.Text {
		return abi.AllowVerdict()
	}
	reason := "unicode-clean: normalized compatibility characters"
	if len(findings) > 0 {
		reason = fmt.Sprintf("unicode-clean: removed invisible characters (%d runs) and normalized compatibility characters", len(findings))
	}
	v := abi.ModifyVerdict(out, reason)
	v.Findings = findings
	return v
}

// Clean returns text without invisible characters, normalized as the
// default mode does.
func Clean(text string) string {
	out, _ := cleanMode(text, NormalizeLetters)
	return out
}

func cleanMode(text, mode string) (string, []abi.Finding) {
	if isPlainASCII(text) {
		return text, nil
	}
	var findings []abi.Finding
	for pass := 0; pass < 4; pass++ {
		removed, f := removeInvisible(text)
		if pass == 0 {
			findings = f
		}
		out := removed
		switch mode {
		case NormalizeNFKC:
			out = normalize(removed, isCJKPunct)
		case NormalizeLetters:
			out = normalize(removed, keepAsWritten)
		}
		if out == text {
			break
		}
		text = out
	}
	return text, findings
}

// isPlainASCII reports whether text is ASCII without control characters
// other than tab, newline and carriage return: such text is already clean
// and in NFKC.
func isPlainASCII(text string) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf || c == 0x7F || c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// removeInvisible drops the characters to remove. It returns text itself
// (no allocation) when there is none.
func removeInvisible(text string) (string, []abi.Finding) {
	var sb strings.Builder
	var findings []abi.Finding
	copied := 0      // text[:copied] is dealt with
	prev := rune(-1) // previous rune of the original text
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == 0x1F3F4 {
			if n := flagTags(text[i+size:]); n > 0 {
				i += size + n
				prev = 0xE007F
				continue
			}
		}
		if r == utf8.RuneError && size == 1 || !invisible.Is(r) || keep(text, i, size, r, prev) {
			prev = r
			i += size
			continue
		}
		// Remove text[i:i+size], merging with a finding that ends here.
		if sb.Cap() == 0 {
			sb.Grow(len(text))
		}
		sb.WriteString(text[copied:i])
		copied = i + size
		rule := ruleOf(r)
		if n := len(findings); n > 0 && findings[n-1].End == i && findings[n-1].Rule == rule {
			findings[n-1].End = i + size
		} else {
			findings = append(findings, abi.Finding{Rule: rule, Start: i, End: i + size})
		}
		prev = r
		i += size
	}
	if findings == nil {
		return text, nil
	}
	sb.WriteString(text[copied:])
	return sb.String(), findings
}

// keep decides the invisible characters ordinary text needs.
func keep(text string, i, size int, r, prev rune) bool {
	switch r {
	case 0x200D, 0x200C: // ZWJ, ZWNJ
		next, _ := utf8.DecodeRuneInString(text[i+size:])
		if isJoiningLetter(prev) && isJoiningLetter(next) {
			return true
		}
		if r == 0x200D && isEmoji(next) {
			base := prev
			if base == 0xFE0F || base >= 0x1F3FB && base <= 0x1F3FF {
				base = runeBefore(text, i, 2)
			}
			return isEmoji(base)
		}
	case 0xFE0E, 0xFE0F:
		return prev > ' ' && !invisible.Is(prev) && !unicode.IsSpace(prev)
	}
	return false
}

// runeBefore returns the n-th rune before byte offset i (1 = the previous).
func runeBefore(text string, i, n int) rune {
	r := rune(-1)
	for ; n > 0 && i > 0; n-- {
		var size int
		r, size = utf8.DecodeLastRuneInString(text[:i])
		i -= size
	}
	return r
}

// flagTags returns the length of the tag sequence of a subdivision flag at
// the start of s (after U+1F3F4), or 0.
func flagTags(s string) int {
	for _, code := range []string{"gbeng", "gbsct", "gbwls"} {
		n := 0
		ok := true
		for _, c := range code {
			r, size := utf8.DecodeRuneInString(s[n:])
			if r != 0xE0000+c {
				ok = false
				break
			}
			n += size
		}
		if r, size := utf8.DecodeRuneInString(s[n:]); ok && r == 0xE007F {
			return n + size
		}
	}
	return 0
}

func ruleOf(r rune) string {
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		return "tag-character"
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return "zero-width"
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return "bidi-control"
	case invisible.IsVariationSelector(r):
		return "variation-selector"
	case r < 0xA0:
		return "control"
	}
	return "invisible-format"
}

// isEmoji approximates Extended_Pictographic plus the regional indicators.
func isEmoji(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF, r >= 0x2600 && r <= 0x27BF, r >= 0x2300 && r <= 0x23FF,
		r >= 0x2B00 && r <= 0x2BFF, r >= 0x2190 && r <= 0x21FF, r >= 0x25A0 && r <= 0x25FF,
		r == 0x2934, r == 0x2935, r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299,
		r == 0xA9, r == 0xAE, r == 0x203C, r == 0x2049, r == 0x2122, r == 0x2139:
		return true
	}
	return false
}

// isJoiningLetter reports letters and marks of the scripts where ZWJ and
// ZWNJ are part of the spelling: Arabic, Syriac, the Indic scripts, Mongolian.
func isJoiningLetter(r rune) bool {
	switch {
	case r >= 0x0600 && r <= 0x08FF, r >= 0x0900 && r <= 0x0DFF, r >= 0x1800 && r <= 0x18AF,
		r >= 0xFB50 && r <= 0xFDFF, r >= 0xFE70 && r <= 0xFEFE:
		return unicode.IsLetter(r) || unicode.IsMark(r)
	}
	return false
}

// keepAsWritten reports the characters the default mode leaves alone:
// punctuation, symbols, spaces and fractions or superscripts, unless their NFKC form holds a character
// that builds chat-template or role markers.
func keepAsWritten(r rune) bool {
	if isCJKPunct(r) {
		return true
	}
	if !unicode.IsPunct(r) && !unicode.IsSymbol(r) && !unicode.Is(unicode.Zs, r) && !unicode.Is(unicode.No, r) {
		return false
	}
	return !strings.ContainsAny(norm.NFKC.String(string(r)), "<>|[]{}/\\#:")
}

// normalize folds s to NFKC except for the characters protect keeps. It
// returns s itself when nothing changes.
func normalize(s string, protect func(rune) bool) string {
	// Fast path: the text is in NFKC apart from protected punctuation.
	for i := 0; ; {
		k := i + norm.NFKC.QuickSpanString(s[i:])
		if k == len(s) {
			return s
		}
		r, size := utf8.DecodeRuneInString(s[k:])
		if !protect(r) {
			break
		}
		i = k + size
	}
	var sb strings.Builder
	changed := false
	seg := 0
	flush := func(end int) {
		part := s[seg:end]
		if norm.NFKC.QuickSpanString(part) != len(part) {
			if n := norm.NFKC.String(part); n != part {
				if !changed {
					sb.Grow(len(s))
					sb.WriteString(s[:seg])
					changed = true
				}
				sb.WriteString(n)
				return
			}
		}
		if changed {
			sb.WriteString(part)
		}
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if protect(r) {
			flush(i)
			if changed {
				sb.WriteString(s[i : i+size])
			}
			seg = i + size
		}
		i += size
	}
	flush(len(s))
	if !changed {
		return s
	}
	return sb.String()
}

// isCJKPunct reports the fullwidth punctuation of CJK typography and the
// ideographic space, which NFKC would turn into ASCII.
func isCJKPunct(r rune) bool {
	switch {
	case r == 0x3000:
		return true
	case r == 0xFF1C, r == 0xFF1E, r == 0xFF5C: // ＜ ＞ ｜ fold: they build markers
		return false
	case r >= 0xFF01 && r <= 0xFF0F, r >= 0xFF1A && r <= 0xFF20, r >= 0xFF3B && r <= 0xFF40, r >= 0xFF5B && r <= 0xFF65:
		return true
	}
	return false
}
