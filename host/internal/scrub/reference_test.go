package scrub

import (
	"strings"
	"testing"
)

// referenceSafe is safe before issue 18: for each secret, every prefix
// length tried against the text's end (the reference of the differential
// tests below).
func (s *Scrubber) referenceSafe(p string) int {
	b := len(p)
	run := len(p)
	for run > 0 && keyChar(p[run-1]) {
		run--
	}
	tail := p[run:]
	for _, pre := range prefixes {
		if i := strings.Index(tail, pre); i >= 0 {
			b = min(b, run+i)
		}
		for k := min(len(pre)-1, len(p)); k > 0; k-- {
			if strings.HasSuffix(p, pre[:k]) {
				b = min(b, len(p)-k)
				break
			}
		}
	}
	for _, sec := range s.list() {
		for k := min(len(sec)-1, len(p)); k > 0; k-- {
			if strings.HasSuffix(p, sec[:k]) {
				b = min(b, len(p)-k)
				break
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, sec := range s.list() {
			lo := max(0, b-len(sec)+1)
			if i := strings.Index(p[lo:min(len(p), b+len(sec)-1)], sec); i >= 0 && lo+i < b {
				b = lo + i
				changed = true
			}
		}
	}
	return b
}

var safeCases = []string{
	"", "plain words", "ends with sk", "ends with sk-an", "ends with moat", "moat_", "mo",
	"The key is " + key("F"), "partial " + key("F")[:20], "two " + key("F") + " and " + key("F")[:9],
	"exact-secret-42 then exact-secr", "exact-secret-4", "xexact-secret-42", "eeeexact-secret-4",
	"sk-ant-abc sk-ant-", "k9-_sk-ant-abc", "é" + key("F")[:3],
}

// TestSafeMatchesReference: the safe prefix is the one the previous
// implementation found.
func TestSafeMatchesReference(t *testing.T) {
	s := New(key("F"), "exact-secret-42", "eeeeeeee")
	for _, p := range safeCases {
		t.Run(p, func(t *testing.T) {
			if got, want := s.safe(p), s.referenceSafe(p); got != want {
				t.Fatalf("safe(%q) = %d, reference %d", p, got, want)
			}
		})
	}
}

// FuzzSafe compares safe with the reference on any text.
func FuzzSafe(f *testing.F) {
	for _, p := range safeCases {
		f.Add(p)
	}
	s := New(key("F"), "exact-secret-42", "eeeeeeee", "abab-abab-ab")
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := s.safe(p), s.referenceSafe(p); got != want {
			t.Fatalf("safe(%q) = %d, reference %d", p, got, want)
		}
	})
}

// BenchmarkStreamDeltas streams a 1.3 KB reply in deltas of about three
// words through a scrubber holding two upstream keys and a client key;
// BenchmarkStreamDeltasReference does the same with the reference safe.
func BenchmarkStreamDeltas(b *testing.B) { benchDeltas(b, false) }

func BenchmarkStreamDeltasReference(b *testing.B) { benchDeltas(b, true) }

func benchDeltas(b *testing.B, ref bool) {
	s := New(key("UP1"), key("UP2"), moatKey())
	words := strings.Fields(strings.Repeat("The Riverside Community Garden had its busiest spring yet: forty-two households now tend plots. ", 14))
	var pieces []string
	for i := 0; i < len(words); i += 3 {
		pieces = append(pieces, " "+strings.Join(words[i:min(i+3, len(words))], " "))
	}
	b.ReportAllocs()
	for b.Loop() {
		st := s.Stream()
		for _, p := range pieces {
			if ref {
				st.pending += p
				n := s.referenceSafe(st.pending)
				_ = s.String(st.pending[:n])
				st.pending = st.pending[n:]
			} else {
				st.Write(p)
			}
		}
		st.Flush()
	}
}

// referenceFound is Found before issue 18: the regexp on every text.
func (s *Scrubber) referenceFound(t string) bool {
	for _, sec := range s.list() {
		if strings.Contains(t, sec) {
			return true
		}
	}
	return keyShape.MatchString(t)
}

var foundCases = []string{
	"", "msg_01XYZ", "claude-sonnet-5-5", "toolu_01abc", "sk-ant-", "sk-ant-abcdef", "sk-ant-abcde", "xx moat_" + strings.Repeat("a", 40),
	"moat_" + strings.Repeat("a", 39), key("F"), "exact-secret-42", "prefix sk-ant-api03-" + strings.Repeat("Z", 10),
}

// TestFoundMatchesReference: Found answers as the regexp alone did.
func TestFoundMatchesReference(t *testing.T) {
	s := New(key("F"), "exact-secret-42")
	for _, text := range foundCases {
		if got, want := s.Found(text), s.referenceFound(text); got != want {
			t.Errorf("Found(%q) = %v, reference %v", text, got, want)
		}
	}
}

// FuzzFound compares Found with the reference on any text.
func FuzzFound(f *testing.F) {
	for _, text := range foundCases {
		f.Add(text)
	}
	s := New(key("F"), "exact-secret-42")
	f.Fuzz(func(t *testing.T, text string) {
		if got, want := s.Found(text), s.referenceFound(text); got != want {
			t.Fatalf("Found(%q) = %v, reference %v", text, got, want)
		}
	})
}

// BenchmarkFoundIdentifier checks a message id, as the output model does
// for every identifier, with Found and the reference in the same run.
func BenchmarkFoundIdentifier(b *testing.B) {
	s := New(key("UP1"), key("UP2"), moatKey())
	for _, ref := range []bool{false, true} {
		b.Run(map[bool]string{false: "new", true: "reference"}[ref], func(b *testing.B) {
			for b.Loop() {
				if ref {
					s.referenceFound("msg_01XFDUDYJgAACzvnptvVoYEL")
				} else {
					s.Found("msg_01XFDUDYJgAACzvnptvVoYEL")
				}
			}
		})
	}
}
