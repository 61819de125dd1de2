package prompt

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewCanary(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		c := NewCanary()
		hexPart := strings.TrimPrefix(c, CanaryPrefix)
		if len(c) != len(CanaryPrefix)+16 || hexPart == c || strings.Trim(hexPart, "0123456789abcdef") != "" {
			t.Fatalf("canary %q is not %s + 16 hex characters", c, CanaryPrefix)
		}
		seen[c] = true
	}
	if len(seen) != 100 {
		t.Fatalf("only %d distinct canaries in 100 draws", len(seen))
	}
	if ins := CanaryInstruction(fixedCanary); !strings.Contains(ins, fixedCanary) || !strings.Contains(ins, "Never reveal") {
		t.Fatalf("instruction %q does not name the canary and forbid revealing it", ins)
	}
}

func TestContainsCanary(t *testing.T) {
	c := fixedCanary // moat-canary-0123456789abcdef
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"exact", "the secret is " + c + ".", true},
		{"upper case", strings.ToUpper(c), true},
		{"random part only", "0123456789abcdef", true},
		{"spaces", "moat canary 0123 4567 89ab cdef", true},
		{"newlines and tabs", "01234567\n89ab\tcdef", true},
		{"zero-width inserted", "0\u200b1\u200c2\u200d3\u20604567\ufeff89abcdef", true},
		{"soft hyphens", "0123\u00ad4567\u00ad89ab\u00adcdef", true},
		{"punctuation", "0-1-2-3.4567_89ab:cdef", true},
		{"fullwidth", "０１２３４５６７８９ａｂｃｄｅｆ", true},
		{"inside a word", "x0123456789ABCDEFy", true},
		{"partial", "0123456789abcde", false},
		{"prefix only", "moat-canary-", false},
		{"other canary", "moat-canary-fedcba9876543210", false},
		{"reordered", "89abcdef01234567", false},
		{"empty text", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ContainsCanary(tc.text, c); got != tc.want {
				t.Fatalf("ContainsCanary(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
	if ContainsCanary("anything", "") || ContainsCanary("moat-canary-", CanaryPrefix) {
		t.Fatal("an empty canary matched")
	}
}

func TestCanaryHold(t *testing.T) {
	canary := CanaryPrefix + "0123456789abcdef"
	tests := []struct {
		name, text string
		want       int
	}{
		{"nothing like it", "hello world.", 0},
		{"empty", "", 0},
		{"one char of it", "the answer is 0", 1},
		{"a longer start", "the marker is 01234", 5},
		{"start spread by spaces", "the marker is 0 1 2", 5},
		{"start in fullwidth digits", "marker \uff10\uff11", 6},
		{"trailing punctuation after a start", "is 012, ", 5},
		{"a prefix that does not continue", "0129", 0},
		{"whole canary is not a proper prefix", "0123456789abcdef", 0},
		{"upper case", "see 0123456789AB", 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanaryHold(tc.text, canary); got != tc.want {
				t.Fatalf("CanaryHold(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
	if CanaryHold("0123", "") != 0 {
		t.Fatal("an empty canary holds text")
	}
}

// FuzzCanaryHold: releasing text up to the hold never lets a canary that
// spans the cut escape a check of the held rest plus what follows.
func FuzzCanaryHold(f *testing.F) {
	f.Add("the marker is 01234", "56789abcdef")
	f.Add("0 1 2", "3456789abcdef and more")
	f.Add("x\uff10\uff11", "23456789abcdef")
	f.Fuzz(func(t *testing.T, text, more string) {
		canary := CanaryPrefix + "0123456789abcdef"
		h := CanaryHold(text, canary)
		if h < 0 || h > len(text) {
			t.Fatalf("hold %d of %d bytes", h, len(text))
		}
		released, rest := text[:len(text)-h], text[len(text)-h:]+more
		if !utf8.ValidString(text) || !utf8.ValidString(more) {
			return
		}
		if ContainsCanary(released+rest, canary) && !ContainsCanary(released, canary) && !ContainsCanary(rest, canary) {
			t.Fatalf("canary escaped: released %q, held+more %q", released, rest)
		}
	})
}
