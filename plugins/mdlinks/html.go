package mdlinks

import (
	"html"
	"strings"
)

// urlAttrs are the HTML attributes whose value a browser loads or follows
// as a URL.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "srcset": true, "action": true, "formaction": true,
	"poster": true, "background": true, "data": true, "cite": true, "longdesc": true,
	"lowsrc": true, "dynsrc": true, "ping": true, "xlink:href": true, "manifest": true,
	"codebase": true, "archive": true, "icon": true, "profile": true, "usemap": true,
}

// span is a byte range of the text.
type span struct{ start, end int }

// htmlURLValues returns the ranges of the URL attribute values of every
// start tag in src[start:end] (raw HTML of the Markdown), offsets in src.
// The scanner follows the HTML tokenizer's attribute rules: names end at
// whitespace, "/", ">" or "="; values are double-quoted, single-quoted or
// run to whitespace or ">".
func htmlURLValues(src []byte, start, end int, safe func(string) bool, out []span) []span {
	i := start
	for i < end {
		lt := indexByteFrom(src, '<', i, end)
		if lt < 0 {
			break
		}
		i = lt + 1
		if i >= end || !isASCIIAlpha(src[i]) {
			continue
		}
		for i < end && !isTagSpace(src[i]) && src[i] != '/' && src[i] != '>' {
			i++
		}
		// attributes
		for i < end && src[i] != '>' {
			if isTagSpace(src[i]) || src[i] == '/' {
				i++
				continue
			}
			ns := i
			for i < end && !isTagSpace(src[i]) && src[i] != '/' && src[i] != '>' && (src[i] != '=' || i == ns) {
				i++
			}
			name := strings.ToLower(string(src[ns:i]))
			j := i
			for j < end && isTagSpace(src[j]) {
				j++
			}
			if j >= end || src[j] != '=' {
				continue
			}
			j++
			for j < end && isTagSpace(src[j]) {
				j++
			}
			var vs, ve int
			switch {
			case j < end && (src[j] == '"' || src[j] == '\''):
				q := src[j]
				vs = j + 1
				ve = indexByteFrom(src, q, vs, end)
				if ve < 0 {
					ve = end
					i = end
				} else {
					i = ve + 1
				}
			default:
				vs = j
				ve = j
				for ve < end && !isTagSpace(src[ve]) && src[ve] != '>' {
					ve++
				}
				i = ve
			}
			if unsafeAttr(name, html.UnescapeString(string(src[vs:ve])), safe) {
				out = append(out, span{vs, ve})
			}
		}
	}
	return out
}

func indexByteFrom(b []byte, c byte, from, to int) int {
	for k := from; k < to; k++ {
		if b[k] == c {
			return k
		}
	}
	return -1
}

func isASCIIAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func isTagSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// unsafeAttr reports whether an attribute's (entity-decoded) value must be
// neutralized: a URL attribute with an unsafe target (each candidate of a
// srcset), any event handler, and a style that loads something.
func unsafeAttr(name, value string, safe func(string) bool) bool {
	switch {
	case name == "srcset" || name == "imagesrcset":
		for _, cand := range strings.Split(value, ",") {
			if f := strings.Fields(cand); len(f) > 0 && !safe(f[0]) {
				return true
			}
		}
		return false
	case urlAttrs[name]:
		return !safe(value)
	case strings.HasPrefix(name, "on"):
		return true
	case name == "style":
		v := strings.ToLower(value)
		return strings.Contains(v, "url") || strings.Contains(v, "expression") || strings.Contains(v, "image") || strings.Contains(v, "\\")
	}
	return false
}
