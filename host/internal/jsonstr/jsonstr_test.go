package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// marshal is what encoding/json writes for s, with or without HTML escaping.
func marshal(t testing.TB, s string, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\b\f\n\r\t", "<a href=\"x\">&amp;</a>",
		"line\u2028para\u2029", "bad \xff\xfe utf-8 \xe2\x82", "héllo 世界 🎉", "\x7f del",
	} {
		for _, html := range []bool{true, false} {
			if got, want := Append(nil, s, html), marshal(t, s, html); !bytes.Equal(got, want) {
				t.Errorf("Append(%q, html=%v) = %s, encoding/json writes %s", s, html, got, want)
			}
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028\xff\x00", "\"\\"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := Append(nil, s, html), marshal(t, s, html); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q, html=%v) = %s, encoding/json writes %s", s, html, got, want)
		}
	})
}

func TestHasLineSeparator(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false}, {"plain ascii", false}, {"a\u2028b", true}, {"\u2029", true}, {"x\u2029", true},
		{"\u2027 \u202a \u20ac", false}, {"\xe2\x80", false}, {"\xe2\xe2\x80\xa8", true}, {"日本語 — “quotes”", false},
	} {
		if got := HasLineSeparator(tc.in); got != tc.want {
			t.Errorf("HasLineSeparator(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzHasLineSeparator(f *testing.F) {
	for _, s := range []string{"", "a\u2028b", "\u2029", "\xe2\x80", "— “”", "\xe2\xe2\x80\xa9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := HasLineSeparator(s), strings.ContainsAny(s, "\u2028\u2029"); got != want {
			t.Fatalf("HasLineSeparator(%q) = %v, strings.ContainsAny says %v", s, got, want)
		}
	})
}
