// Package stripmarkers is the strip-markers built-in: it removes
// chat-template and role markers from user input so text cannot pose as a
// turn boundary or a system message.
//
// Removed, case-insensitively:
//   - special tokens "<|name|>" (<|im_start|>, <|endoftext|>, <|eot_id|>, ...),
//     also with fullwidth bars (<｜begin▁of▁sentence｜>);
//   - stray "<|" and "|>", except as a spaced operator (" |> ", " <| ", the
//     pipe of F#, Elixir and R), which is kept;
//   - [INST], [/INST], <<SYS>>, <</SYS>>, <s>, </s>, <start_of_turn>,
//     <end_of_turn>, <bos>, <eos>;
//   - "### Instruction:"-style headers (###, then instruction, response,
//     input, system, user, assistant or human, then a colon) at a line start;
//   - "Human:", "Assistant:" and "System:" labels at a line start (the label
//     only; the rest of the line stays).
//
// Matching ignores invisible characters (zero-width, bidi, tags) inside a
// marker and reads fullwidth ASCII as ASCII, so "<\u200b|im_start|>" or
// "＜｜im_start｜＞" are caught; the invisible characters go with the marker.
// Removal repeats until nothing changes, because removing "<|" from "<<||"
// leaves "<|".
package stripmarkers

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/invisible"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Input is the input-phase handler. It takes no config.
func Input(req abi.Request) abi.Verdict {
	out, findings := strip(req.Text)
	if findings == nil {
		return abi.AllowVerdict()
	}
	v := abi.ModifyVerdict(out, "strip-markers: removed chat-template markers")
	v.Findings = findings
	return v
}

// Strip returns text with every marker removed.
func Strip(text string) string {
	out, _ := strip(text)
	return out
}

// strip removes markers until none is left. findings (nil when nothing was
// removed) locate the first pass's removals in text.
func strip(text string) (string, []abi.Finding) {
	if quickClean(text) {
		return text, nil
	}
	var findings []abi.Finding
	v := viewPool.Get().(*view)
	defer viewPool.Put(v)
	for pass := 0; ; pass++ {
		v.fold(text)
		v.cuts = v.cuts[:0]
		v.scan()
		if len(v.cuts) == 0 {
			return text, findings
		}
		if pass == 0 {
			findings = make([]abi.Finding, len(v.cuts))
			for i, c := range v.cuts {
				findings[i] = abi.Finding{Rule: c.rule, Start: c.start, End: c.end}
			}
		}
		text = v.apply(text)
	}
}

// quickClean reports, by a scan of the raw bytes, that text cannot hold a
// marker: it is ASCII without '|', without '<' or '[' starting a tag, and
// without '#' or a role label at a line start. Anything else goes to the
// full matcher.
func quickClean(text string) bool {
	lineStart := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !lineStart && !quickMark[c] {
			continue // a plain byte inside a line: nothing below applies
		}
		if c >= utf8.RuneSelf || c == '|' {
			return false
		}
		if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			return false // controls are dropped by the matcher
		}
		var next byte
		if i+1 < len(text) {
			next = lower(text[i+1])
		}
		switch c {
		case '<':
			switch next {
			case '<', '/', 's', 'b', 'e':
				return false
			}
		case '[':
			if next == 'i' || next == '/' {
				return false
			}
		}
		if lineStart {
			switch lower(c) {
			case ' ', '\t':
				continue
			case '#':
				return false
			case 'h', 'a', 's':
				if roleWordColonASCII(text[i:]) {
					return false
				}
			}
		}
		lineStart = c == '\n' || c == '\r'
	}
	return true
}

// quickMark marks the bytes quickClean must look at inside a line: non-ASCII,
// '|', controls, '<', '[' and line ends.
var quickMark = func() (t [256]bool) {
	for i := range t {
		c := byte(i)
		t[i] = c >= utf8.RuneSelf || c == '|' || c < 0x20 || c == '<' || c == '['
	}
	return t
}()

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// roleWordColonASCII matches a role label case-insensitively in ASCII text.
func roleWordColonASCII(s string) bool {
	for _, w := range roleLabels {
		if len(s) > len(w) && strings.EqualFold(s[:len(w)], w) {
			k := len(w)
			for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
				k++
			}
			if k < len(s) && s[k] == ':' {
				return true
			}
		}
	}
	return false
}

// cut is one removal in original byte offsets.
type cut struct {
	start, end int
	rule       string
}

// view is text folded for matching: one byte per visible rune (ASCII
// lower-cased, fullwidth forms mapped to ASCII, anything else 0x80), with
// invisible runes dropped; src and end map each folded byte back to the
// rune's byte range in the original text.
type view struct {
	b        []byte
	src, end []int32
	cuts     []cut
}

var viewPool = sync.Pool{New: func() any { return new(view) }}

func (v *view) fold(text string) {
	v.b, v.src, v.end = v.b[:0], v.src[:0], v.end[:0]
	for i := 0; i < len(text); {
		c := text[i]
		size := 1
		if c >= utf8.RuneSelf {
			var r rune
			r, size = utf8.DecodeRuneInString(text[i:])
			switch {
			case invisible.Is(r):
				i += size
				continue
			case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
				c = byte(r - 0xFEE0)
			case r == 0x2581: // ▁, SentencePiece's space
				c = '_'
			case r == 0xFE64:
				c = '<'
			case r == 0xFE65:
				c = '>'
			default:
				c = 0x80
			}
		} else if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			i++
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		v.b = append(v.b, c)
		v.src = append(v.src, int32(i))
		v.end = append(v.end, int32(i+size))
		i += size
	}
}

// add records the removal of folded bytes [i, j).
func (v *view) add(i, j int, rule string) {
	v.cuts = append(v.cuts, cut{start: int(v.src[i]), end: int(v.end[j-1]), rule: rule})
}

func (v *view) scan() {
	b := v.b
	lineStart := true
	for i := 0; i < len(b); {
		c := b[i]
		if lineStart {
			if n := v.lineMarker(i); n > 0 {
				i += n
				continue
			}
		}
		switch c {
		case '\n', '\r':
			lineStart = true
			i++
			continue
		case ' ', '\t':
			i++ // leading blanks keep lineStart
			continue
		case '<':
			if n := v.angle(i); n > 0 {
				i += n
				lineStart = false
				continue
			}
		case '|':
			if i+1 < len(b) && b[i+1] == '>' && !spacedOp(b, i, 2) {
				v.add(i, i+2, "marker")
				i += 2
				lineStart = false
				continue
			}
		case '[':
			if n := matchAny(b[i:], bracketTags); n > 0 {
				v.add(i, i+n, "marker")
				i += n
				lineStart = false
				continue
			}
		}
		lineStart = false
		i++
	}
}

var bracketTags = []string{"[inst]", "[/inst]"}
var angleTags = []string{"<<sys>>", "<</sys>>", "<s>", "</s>", "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>"}

func matchAny(b []byte, tags []string) int {
	for _, t := range tags {
		if len(b) >= len(t) && string(b[:len(t)]) == t {
			return len(t)
		}
	}
	return 0
}

// angle handles a marker starting with '<' at i and returns its length.
func (v *view) angle(i int) int {
	b := v.b
	if n := matchAny(b[i:], angleTags); n > 0 {
		v.add(i, i+n, "marker")
		return n
	}
	if i+1 >= len(b) || b[i+1] != '|' {
		return 0
	}
	// A special token: <| name |>.
	j := i + 2
	for j < len(b) && j-i < 80 && isNameByte(b[j]) {
		j++
	}
	if j+1 < len(b) && b[j] == '|' && b[j+1] == '>' && j > i+2 {
		v.add(i, j+2, "special-token")
		return j + 2 - i
	}
	if spacedOp(b, i, 2) {
		return 0
	}
	v.add(i, i+2, "marker")
	return 2
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' || c == ' '
}

// spacedOp reports whether the n bytes at i stand between blanks, like an
// operator in code ("x |> f").
func spacedOp(b []byte, i, n int) bool {
	return i > 0 && (b[i-1] == ' ' || b[i-1] == '\t') &&
		(i+n == len(b) || b[i+n] == ' ' || b[i+n] == '\t' || b[i+n] == '\n' || b[i+n] == '\r')
}

var roleHeaders = []string{"instructions", "instruction", "response", "input", "system", "user", "assistant", "human"}
var roleLabels = []string{"human", "assistant", "system"}

// lineMarker handles a role header or label at the start of a line (i is
// the first non-blank byte) and returns the bytes consumed.
func (v *view) lineMarker(i int) int {
	b := v.b
	j := i
	if b[j] == '#' {
		for j < len(b) && b[j] == '#' {
			j++
		}
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if n := roleWordColon(b[j:], roleHeaders); n > 0 {
			v.add(i, j+n, "role-header")
			return j + n - i
		}
		return 0
	}
	if n := roleWordColon(b[j:], roleLabels); n > 0 {
		v.add(i, j+n, "role-label")
		return n
	}
	return 0
}

// roleWordColon matches one of words, optional blanks and a colon.
func roleWordColon(b []byte, words []string) int {
	for _, w := range words {
		if len(b) <= len(w) || string(b[:len(w)]) != w {
			continue
		}
		k := len(w)
		for k < len(b) && (b[k] == ' ' || b[k] == '\t') {
			k++
		}
		if k < len(b) && b[k] == ':' {
			return k + 1
		}
	}
	return 0
}

// apply returns text without the cuts (sorted, possibly adjacent).
func (v *view) apply(text string) string {
	var sb strings.Builder
	sb.Grow(len(text))
	prev := 0
	for _, c := range v.cuts {
		if c.start < prev {
			c.start = prev
		}
		sb.WriteString(text[prev:c.start])
		prev = max(prev, c.end)
	}
	sb.WriteString(text[prev:])
	return sb.String()
}
