package stripmarkers

// quickClean must answer as it did before the quickMark table skipped the
// plain bytes of a line: refQuickClean is that version.

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
)

func TestQuickCleanMatchesReference(t *testing.T) {
	texts := []string{"", "a", "\n", "<", "<s", "a <s", "[i", "a [/", "|", "é", "\x01", "human: hi", "x\nHuman : hi", "\n  #", "a#", "x\rassistant:", "ok\tsystem:",
		benchtext.Text4K, strings.Repeat("plain text line\n", 100)}
	for _, text := range texts {
		if got, want := quickClean(text), refQuickClean(text); got != want {
			t.Errorf("quickClean(%q) = %v, want %v", text, got, want)
		}
	}
}

func FuzzQuickCleanMatchesReference(f *testing.F) {
	f.Add("Human: hi\n<system>")
	f.Add(benchtext.Text4K[:400])
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := quickClean(s), refQuickClean(s); got != want {
			t.Fatalf("quickClean(%q) = %v, want %v", s, got, want)
		}
	})
}

// refQuickClean is quickClean before the quickMark table.
func refQuickClean(text string) bool {
	lineStart := true
	for i := 0; i < len(text); i++ {
		c := text[i]
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
