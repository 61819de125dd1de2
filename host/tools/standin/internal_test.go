package standin

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSplitDeltas(t *testing.T) {
	tests := []struct {
		name string
		text string
		size int
		want []string
	}{
		{"empty", "", 4, nil},
		{"bytes", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"no split inside é", "aéb", 2, []string{"a", "é", "b"}},
		{"é fits", "aébc", 3, []string{"aé", "bc"}},
		{"rune wider than size", "😀x", 2, []string{"😀", "x"}},
		{"cjk", "日本語", 4, []string{"日", "本", "語"}},
		{"words", "one two three four five", 0, []string{"one two three ", "four five"}},
		{"newlines count as breaks", "a\nb c\nd", 0, []string{"a\nb c\n", "d"}},
		{"invalid utf-8 still progresses", "\x80\x80\x80", 1, []string{"\x80", "\x80", "\x80"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := splitDeltas(tc.text, tc.size)
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
				t.Errorf("splitDeltas(%q, %d) = %q, want %q", tc.text, tc.size, got, tc.want)
			}
		})
	}
}

func TestParseMarker(t *testing.T) {
	tests := []struct {
		text    string
		want    Fault
		wantErr string
	}{
		{"no marker here", Fault{}, ""},
		{"x MOAT_FAULT:reset y", Fault{Kind: FaultReset, Count: 1}, ""},
		{"MOAT_FAULT:reset=7", Fault{Kind: FaultReset, Count: 1, AfterEvents: 7}, ""},
		{"MOAT_FAULT:slow=250ms.", Fault{Kind: FaultSlowFirstByte, Count: 1, Delay: 250 * time.Millisecond}, ""},
		{"MOAT_FAULT:huge=1000", Fault{Kind: FaultHuge, Count: 1, Size: 1000}, ""},
		{"MOAT_FAULT:rate_limit=30", Fault{Kind: FaultRateLimit, Count: 1, RetryAfter: "30"}, ""},
		{"MOAT_FAULT:error=502", Fault{Kind: FaultError, Count: 1, Status: 502}, ""},
		{"MOAT_FAULT:endless", Fault{Kind: FaultEndless, Count: 1}, ""},
		{"first MOAT_FAULT:overloaded then MOAT_FAULT:reset", Fault{Kind: FaultOverloaded, Count: 1}, ""},
		{"MOAT_FAULT:", Fault{}, "unknown fault kind"},
		{"MOAT_FAULT:Reset", Fault{}, "unknown fault kind"},
		{"MOAT_FAULT:reset=", Fault{}, "empty argument"},
		{"MOAT_FAULT:reset=0", Fault{}, "event count"},
		{"MOAT_FAULT:slow=-1s", Fault{}, "duration"},
		{"MOAT_FAULT:slow=2h", Fault{}, "duration"},
		{"MOAT_FAULT:huge=99999999999", Fault{}, "byte count"},
		{"MOAT_FAULT:error=200", Fault{}, "HTTP error status"},
		{"MOAT_FAULT:overloaded=3", Fault{}, "takes no argument"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseMarker(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseMarker = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestEstimateTokensAndPrefix(t *testing.T) {
	for n, want := range map[int]int{-1: 1, 0: 1, 1: 1, 4: 1, 5: 2, 400: 100} {
		if got := EstimateTokens(n); got != want {
			t.Errorf("EstimateTokens(%d) = %d, want %d", n, got, want)
		}
	}
	if got := prefixUTF8("aé", 2); got != "a" {
		t.Errorf("prefixUTF8 cut a character: %q", got)
	}
}

func TestParseRequestNeverTrustsShape(t *testing.T) {
	r, err := parseRequest([]byte(`{"model":"m","max_tokens":3,"stream":true,"system":"ab",`+
		`"messages":[{"role":"user","content":[{"type":"text","text":"xy"},{"type":"tool_result","content":[{"type":"text","text":"zzz"}]}]}]}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "m" || r.MaxTokens != 3 || !r.Stream || r.TextBytes != 7 || r.LastUser != "xy" {
		t.Errorf("parsed %+v", r)
	}
	var re *requestError
	if _, err := parseRequest([]byte(`{"model":"m","max_tokens":99999999999999999999,"messages":[]}`), true); !errors.As(err, &re) {
		t.Errorf("overflowing max_tokens: %v", err)
	}
}

// FuzzParseRequest: no input panics, and accepted requests are consistent.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`), true)
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"tool_result","content":"b"}]}],"system":[{"type":"text","text":"s"}]}`), false)
	f.Add([]byte(`{"model":"m","max_tokens":1,"stream":null,"messages":[{"role":"assistant","content":[]}]}`), true)
	f.Add([]byte(`[]`), true)
	f.Fuzz(func(t *testing.T, body []byte, needMax bool) {
		r, err := parseRequest(body, needMax)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.msg == "" {
				t.Fatalf("error %v is not a requestError", err)
			}
			return
		}
		if r.Model == "" || (needMax && r.MaxTokens < 1) || r.TextBytes < len(r.LastUser) {
			t.Fatalf("accepted inconsistent request %+v", r)
		}
	})
}

// FuzzParseMarker: no input panics, and a parsed fault is valid.
func FuzzParseMarker(f *testing.F) {
	for _, s := range []string{"MOAT_FAULT:reset=3", "MOAT_FAULT:slow=1.5s", "x MOAT_FAULT:huge=12 y", "MOAT_FAULT:error=599", "MOAT_FAULT:", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		fault, err := ParseMarker(text)
		if err != nil {
			return
		}
		if err := fault.validate(); err != nil {
			t.Fatalf("ParseMarker(%q) gave an invalid fault: %v", text, err)
		}
		if (fault.Kind == FaultNone) == strings.Contains(text, MarkerPrefix) {
			t.Fatalf("ParseMarker(%q) = %+v", text, fault)
		}
	})
}

// FuzzSplitDeltas: deltas are non-empty, rejoin to the text, keep valid
// UTF-8 valid, and respect the size unless one character is wider.
func FuzzSplitDeltas(f *testing.F) {
	f.Add("héllo wörld 😀 日本語", 3)
	f.Add("one two three four", 0)
	f.Add("\xff\xfe abc", 1)
	f.Fuzz(func(t *testing.T, text string, size int) {
		size %= 64
		deltas := splitDeltas(text, size)
		if strings.Join(deltas, "") != text {
			t.Fatalf("deltas %q do not rejoin to %q", deltas, text)
		}
		for _, d := range deltas {
			if d == "" {
				t.Fatalf("empty delta in %q", deltas)
			}
			if utf8.ValidString(text) && !utf8.ValidString(d) {
				t.Fatalf("delta %q splits a character", d)
			}
			if size > 0 && len(d) > size && utf8.RuneCountInString(d) > 1 {
				t.Fatalf("delta %q longer than %d", d, size)
			}
		}
	})
}
