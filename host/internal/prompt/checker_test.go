package prompt

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file is an independent checker of wrapped output. It does not use
// the package's escaping or skeleton code: it reads the output the way a
// lenient model might (NFKC, invisible characters dropped, HTML entities
// decoded once and twice) and counts tags.

// invisible reports characters a reader would not see: format characters
// (zero-width space/joiners, BOM, soft hyphen, bidi controls, word joiner),
// variation selectors, the combining grapheme joiner and Hangul fillers.
func invisible(r rune) bool {
	switch r {
	case 0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180E:
		return true
	}
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

func normView(s string) string {
	return strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, norm.NFKC.String(s))
}

// views returns the raw reading and the readings after decoding entities
// once and twice, each NFKC-normalised with invisible characters removed.
func views(out string) []string {
	v0 := normView(out)
	v1 := normView(html.UnescapeString(v0))
	v2 := normView(html.UnescapeString(v1))
	return []string{v0, v1, v2}
}

// tagRE matches an opening or closing tag whose name starts with tag,
// ignoring case and whitespace around '/'; group 1 is "/" for a closing tag.
func tagRE(tag string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)<\s*(/?)\s*` + regexp.QuoteMeta(tag))
}

// countTags counts opening and closing tags named tag (or a longer name
// starting with it) in s, and returns the offsets of the first opening
// and last closing match.
func countTags(s, tag string) (opens, closes, firstOpen, lastClose int) {
	firstOpen, lastClose = -1, -1
	for _, m := range tagRE(tag).FindAllStringSubmatchIndex(s, -1) {
		if m[3] > m[2] {
			closes++
			lastClose = m[0]
		} else {
			opens++
			if firstOpen < 0 {
				firstOpen = m[0]
			}
		}
	}
	return
}

// checkWrapped verifies out = Wrap(data) with tag name tag: in every
// reading exactly one opening tag at the start and one closing tag at the
// end; in the raw reading no '<' or '>' between them; and the body,
// HTML-unescaped, equals data (with invalid UTF-8 bytes read as U+FFFD).
func checkWrapped(out, tag, data string) error {
	if err := checkViews(out, tag, views(out)); err != nil {
		return err
	}
	return checkRaw(out, tag, data)
}

// checkRaw is checkWrapped without the entity-decoded readings: what
// escaping alone guarantees, whatever the tag name.
func checkRaw(out, tag, data string) error {
	if err := checkViews(out, tag, views(out)[:1]); err != nil {
		return err
	}
	open, close := "<"+tag+">\n", "\n</"+tag+">"
	if !strings.HasPrefix(out, open) || !strings.HasSuffix(out, close) || len(out) < len(open)+len(close) {
		return fmt.Errorf("output does not start with %q and end with %q", open, close)
	}
	body := out[len(open) : len(out)-len(close)]
	if i := strings.IndexAny(body, "<>"); i >= 0 {
		return fmt.Errorf("raw body has %q at %d", body[i], i)
	}
	if i := strings.IndexAny(normView(body), "<>"); i >= 0 {
		return fmt.Errorf("normalised body has an angle bracket at %d", i)
	}
	if !utf8.ValidString(out) {
		return fmt.Errorf("output is not valid UTF-8")
	}
	if got, want := html.UnescapeString(body), string([]rune(data)); got != want {
		return fmt.Errorf("body does not round-trip: got %q, want %q", got, want)
	}
	return nil
}

func checkViews(out, tag string, vs []string) error {
	for i, v := range vs {
		opens, closes, first, last := countTags(v, tag)
		if opens != 1 || closes != 1 {
			return fmt.Errorf("reading %d: %d opening and %d closing <%s> tags, want 1 and 1", i, opens, closes, tag)
		}
		if first != 0 {
			return fmt.Errorf("reading %d: opening tag at %d, want 0", i, first)
		}
		if want := len(v) - len("</"+tag+">"); last != want {
			return fmt.Errorf("reading %d: closing tag at %d, want %d (the end)", i, last, want)
		}
	}
	return nil
}
