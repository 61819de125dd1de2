package sdk

// Phrases finds any of a list of phrases in a text, ignoring the case of
// ASCII letters (other bytes compare exactly). It skips through the text
// (Boyer-Moore-Horspool) instead of lowering a copy of it, so a deny-list
// check on a few KiB costs microseconds even in the sandbox. Build it once
// (in init or Config.Prepare) and share it: it is read-only after NewPhrases.
type Phrases struct {
	list []phrase
}

type phrase struct {
	low  string     // the phrase with ASCII letters lowered
	skip [256]int32 // Horspool shift per (lowered) byte
}

// foldASCII lowers ASCII letters and leaves every other byte alone.
var foldASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// NewPhrases prepares a matcher for the phrases, in order. Empty phrases
// never match.
func NewPhrases(list ...string) *Phrases {
	p := &Phrases{list: make([]phrase, len(list))}
	for i, s := range list {
		ph := &p.list[i]
		b := []byte(s)
		for j, c := range b {
			b[j] = foldASCII[c]
		}
		ph.low = string(b)
		m := int32(len(b))
		for c := range ph.skip {
			ph.skip[c] = m
		}
		for j := 0; j+1 < len(b); j++ {
			ph.skip[b[j]] = m - 1 - int32(j)
		}
	}
	return p
}

// Len returns the number of phrases.
func (p *Phrases) Len() int { return len(p.list) }

// Find returns the index of the first phrase in the list that occurs in
// text, and the byte offset of its first occurrence; -1, -1 when none does.
func (p *Phrases) Find(text string) (which, at int) {
	for i := range p.list {
		if at := p.list[i].index(text); at >= 0 {
			return i, at
		}
	}
	return -1, -1
}

// index is the offset of the phrase's first occurrence in text, or -1.
func (ph *phrase) index(text string) int {
	m := len(ph.low)
	if m == 0 {
		return -1
	}
	last := ph.low[m-1]
	for i := 0; i+m <= len(text); {
		c := foldASCII[text[i+m-1]]
		if c == last && ph.matchAt(text, i) {
			return i
		}
		i += int(ph.skip[c])
	}
	return -1
}

func (ph *phrase) matchAt(text string, i int) bool {
	for j := 0; j < len(ph.low)-1; j++ {
		if foldASCII[text[i+j]] != ph.low[j] {
			return false
		}
	}
	return true
}
