package mdlinks

// tailStart returns where the last paragraph that further text could extend
// begins: after the last blank line that is complete (followed by a newline).
func tailStart(src []byte) int {
	start := 0
	lineStart := 0
	for i, c := range src {
		if c != '\n' {
			continue
		}
		blank := true
		for _, d := range src[lineStart:i] {
			if d != ' ' && d != '\t' && d != '\r' {
				blank = false
				break
			}
		}
		if blank {
			start = i + 1
		}
		lineStart = i + 1
	}
	return start
}

// maxOpeners bounds the openers checked in the last paragraph.
const maxOpeners = 256

// HoldMarker is appended to a text that ends inside an unfinished link.
const HoldMarker = "\u200b"

// appendUnfinished appends HoldMarker when a link construct is still open
// at the end of src (see the package comment). literal holds the offsets
// of "[" and "<" that the parser left as text.
//
// Why a mark at the end: the stream guard releases a prefix p of the
// pending text w only when T(p) + T(rest) == T(w). When p ends inside a
// construct that is still open at the end of w, both T(p) and T(w) end with
// the mark, so T(p) + T(rest) has one mark too many and p is held back,
// however the construct later completes. A construct that starts in rest
// does not hold p back.
func appendUnfinished(edits []edit, src []byte, literal []int) []edit {
	tail := tailStart(src)
	n := 0
	for _, i := range literal {
		if i < tail {
			continue
		}
		// Each check scans forward: past maxOpeners the tail is taken as
		// unfinished rather than scanned again and again.
		if n++; n > maxOpeners || unfinished(src, i) {
			return append(edits, edit{len(src), len(src), HoldMarker, "unfinished-link"})
		}
	}
	return edits
}

// unfinished reports whether the "[" or "<" at i could still become part of
// a link, given more text.
func unfinished(src []byte, i int) bool {
	if src[i] == '<' {
		if i+1 >= len(src) {
			return true
		}
		c := src[i+1]
		if !isASCIIAlpha(c) && c != '/' && c != '!' && c != '?' {
			return false
		}
		return indexByteFrom(src, '>', i+1, len(src)) < 0
	}
	// "[": find its match among unescaped brackets.
	depth := 0
	q := -1
	for k := i; k < len(src); k++ {
		switch {
		case escaped(src, k):
		case src[k] == '[':
			depth++
		case src[k] == ']':
			depth--
		}
		if depth == 0 {
			q = k
			break
		}
	}
	if q < 0 || q+1 >= len(src) {
		return true // unmatched, or "[text]" at the very end
	}
	switch src[q+1] {
	case '(':
		return !closes(src, q+1, '(', ')')
	case '[':
		return !closes(src, q+1, '[', ']')
	case ':':
		// "[label]:" at the start of a line, with nothing after it yet.
		for k := q + 2; k < len(src); k++ {
			if src[k] != ' ' && src[k] != '\t' && src[k] != '\n' && src[k] != '\r' {
				return false
			}
		}
		return atLineStart(src, i)
	}
	return false
}

// closes reports whether the bracket at i is closed later in src.
func closes(src []byte, i int, open, close byte) bool {
	depth := 0
	for k := i; k < len(src); k++ {
		if escaped(src, k) {
			continue
		}
		switch src[k] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return true
			}
		}
	}
	return false
}

// atLineStart reports whether only up to three spaces precede i on its line.
func atLineStart(src []byte, i int) bool {
	n := 0
	for k := i - 1; k >= 0 && src[k] != '\n'; k-- {
		if src[k] != ' ' {
			return false
		}
		n++
	}
	return n <= 3
}
