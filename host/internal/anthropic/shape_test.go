package anthropic

import (
	"regexp"
	"testing"
)

// The regular expressions the shapes stand for: the reference of
// FuzzShapes.
var shapeRefs = []struct {
	name string
	sh   shape
	re   *regexp.Regexp
}{
	{"typeName", typeName, regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)},
	{"identShape", identShape, regexp.MustCompile(`^[A-Za-z0-9_.:/+@\-]{0,256}$`)},
	{"opaqueShape", opaqueShape, regexp.MustCompile(`^[A-Za-z0-9+/=_\-.]*$`)},
	{"keyShape", keyShape, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)},
}

func TestShapes(t *testing.T) {
	long := func(n int, c byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}
	inputs := []string{"", "a", "A", "_", "9", "text", "tool_use", "Text", "msg_01ABC", "claude-sonnet-5-5",
		"https://e.com/a?b", "a b", "a\nb", "<b>", "sk-ant-api03-x", "EqQBCkgIBRAB+/=", "é", "a\x00",
		long(63, 'a'), long(64, 'a'), long(65, 'a'), long(256, 'a'), long(257, 'a'), "-x", ".x", "x-"}
	for _, ref := range shapeRefs {
		for _, in := range inputs {
			if got, want := ref.sh.match(in), ref.re.MatchString(in); got != want {
				t.Errorf("%s.match(%q) = %v, the regexp says %v", ref.name, in, got, want)
			}
		}
	}
}

func FuzzShapes(f *testing.F) {
	for _, s := range []string{"", "tool_use", "msg_01", "a b", "EqQB+/=", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ref := range shapeRefs {
			if got, want := ref.sh.match(s), ref.re.MatchString(s); got != want {
				t.Fatalf("%s.match(%q) = %v, the regexp says %v", ref.name, s, got, want)
			}
		}
	})
}
