package injclassifier

import "testing"

// FuzzCollapseToken checks collapseToken's shortcut: a token without
// repeats (repeats false) is one collapseRepeats leaves unchanged, and
// with or without the shortcut the result is the same.
func FuzzCollapseToken(f *testing.F) {
	for _, s := range []string{
		"", "abcdefghijklmnop", "}}}}}}}}}}}}}}}}", "ööööööööö", "=-=-=-=-=-=-=-", "abcabcabcabcabc", "abcdabcdabcdabcdx",
		"aaab", "xyxyxyx", "hello-world-hello-world", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pre := "pre "
		fast := []byte(pre + s)
		slow := []byte(pre + s)
		got := string(fast[:collapseToken(fast, len(pre))])
		want := string(slow[:collapseRepeats(slow, len(pre))])
		if got != want {
			t.Fatalf("collapseToken(%q) = %q, collapseRepeats gives %q", s, got, want)
		}
	})
}
