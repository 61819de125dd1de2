// Package scrub removes keys from text moat relays to clients: exact secret
// values (the upstream Anthropic keys, the caller's own client key) and
// anything shaped like an Anthropic key (sk-ant-...) or a moat client key
// (moat_ followed by 40 or more letters and digits). It works on whole
// strings and on text that arrives in pieces (a stream), where it holds back
// only what could still become a key.
package scrub

import (
	"regexp"
	"sort"
	"strings"
)

// Mask replaces every secret and key-shaped string.
const Mask = "[SECRET]"

// keyShape matches an Anthropic key or a moat client key (moat_ plus the
// 43 base62 characters of auth.NewKey; 40 or more are matched, so a
// client key cut short is still masked). Every character of a match is
// in keyChars.
var keyShape = regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]{6,}|moat_[A-Za-z0-9]{40,}`)

// prefixes start every key-shaped match.
var prefixes = []string{"sk-ant-", "moat_"}

// minSecret is the shortest exact secret honoured: shorter values (an empty
// or test key) would mask ordinary words.
const minSecret = 8

// Scrubber masks a fixed set of secrets and every key-shaped string. The
// zero Scrubber and a nil one mask key shapes only. It is safe for
// concurrent use.
type Scrubber struct {
	secrets []string // longest first
}

// New returns a Scrubber for the given exact secrets; empty values and
// values shorter than 8 bytes are ignored.
func New(secrets ...string) *Scrubber {
	s := &Scrubber{}
	for _, v := range secrets {
		if len(v) >= minSecret && !contains(s.secrets, v) {
			s.secrets = append(s.secrets, v)
		}
	}
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	return s
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Scrubber) list() []string {
	if s == nil {
		return nil
	}
	return s.secrets
}

// String returns t with every secret and key-shaped string masked.
func (s *Scrubber) String(t string) string {
	if t == "" {
		return t
	}
	for _, sec := range s.list() {
		if strings.Contains(t, sec) {
			t = strings.ReplaceAll(t, sec, Mask)
		}
	}
	if strings.Contains(t, "sk-ant-") || strings.Contains(t, "moat_") {
		t = keyShape.ReplaceAllString(t, Mask)
	}
	return t
}

// Found reports whether t holds a secret or a key-shaped string.
func (s *Scrubber) Found(t string) bool {
	for _, sec := range s.list() {
		if strings.Contains(t, sec) {
			return true
		}
	}
	// Every key-shaped match starts with one of the prefixes: the
	// regexp runs only on text holding one.
	return (strings.Contains(t, "sk-ant-") || strings.Contains(t, "moat_")) && keyShape.MatchString(t)
}

// Stream scrubs one text that arrives in pieces. Write returns the part
// that can be released now; Flush returns the rest at the end. The
// concatenation of what they return is String of the whole text. A Stream
// is not safe for concurrent use.
type Stream struct {
	s       *Scrubber
	pending string
}

// Stream returns a new stream scrubber.
func (s *Scrubber) Stream() *Stream { return &Stream{s: s} }

// Write adds a piece and returns the scrubbed text that may be released.
func (st *Stream) Write(piece string) string {
	st.pending += piece
	b := st.s.safe(st.pending)
	if b == 0 {
		return ""
	}
	out := st.s.String(st.pending[:b])
	st.pending = st.pending[b:]
	return out
}

// Flush returns the scrubbed remainder and resets the stream.
func (st *Stream) Flush() string {
	out := st.s.String(st.pending)
	st.pending = ""
	return out
}

// Pending returns the number of bytes held back.
func (st *Stream) Pending() int { return len(st.pending) }

// safe returns the length of the longest prefix of p whose scrubbing cannot
// change whatever follows: no key-shaped match and no secret starts in the
// prefix and reaches past it, or could once more text arrives.
func (s *Scrubber) safe(p string) int {
	b := len(p)
	// Key shapes: every character of a match is a key character, so a
	// match that reaches the end lies in the trailing run of them, and it
	// starts at an occurrence of a prefix (or a partial one at the very
	// end). The first such start in the run bounds the safe prefix: a
	// match from there runs to the end of the run.
	run := len(p)
	for run > 0 && keyChar(p[run-1]) {
		run--
	}
	tail := p[run:]
	for _, pre := range prefixes {
		if i := strings.Index(tail, pre); i >= 0 {
			b = min(b, run+i)
		}
		b = min(b, len(p)-overhang(p, pre))
	}
	// Exact secrets: hold a suffix that begins one, and never cut through
	// a whole occurrence.
	for _, sec := range s.list() {
		b = min(b, len(p)-overhang(p, sec))
	}
	for changed := true; changed; {
		changed = false
		for _, sec := range s.list() {
			// An occurrence that starts before b and ends after it.
			lo := max(0, b-len(sec)+1)
			if i := strings.Index(p[lo:min(len(p), b+len(sec)-1)], sec); i >= 0 && lo+i < b {
				b = lo + i
				changed = true
			}
		}
	}
	return b
}

// overhang returns the length of the longest suffix of p that is a proper
// prefix of w (text that could still become w): it tries only the
// positions where w's first byte occurs, from the earliest one that could
// hold such a suffix.
func overhang(p, w string) int {
	if w == "" {
		return 0
	}
	for i := max(0, len(p)-len(w)+1); i < len(p); i++ {
		j := strings.IndexByte(p[i:], w[0])
		if j < 0 {
			return 0
		}
		i += j
		if strings.HasPrefix(w, p[i:]) {
			return len(p) - i
		}
	}
	return 0
}

// keyChar reports whether c can be part of a key-shaped match.
func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
