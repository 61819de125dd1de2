package piiredact

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"email", "mail jane.doe+tag@mail.example.co.uk today", "mail [EMAIL] today"},
		{"email sentence end", "Write to bob@example.com.", "Write to [EMAIL]."},
		{"two emails", "a@b.io,c_d@e-f.org", "[EMAIL],[EMAIL]"},
		{"visa", "card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"},
		{"visa compact", "4111111111111111", "[CARD]"},
		{"mastercard dashes", "5555-5555-5555-4444", "[CARD]"},
		{"amex", "amex 3782 822463 10005", "amex [CARD]"},
		{"iban spaced", "IBAN: GB82 WEST 1234 5698 7654 32 thanks", "IBAN: [IBAN] thanks"},
		{"iban compact", "DE89370400440532013000", "[IBAN]"},
		{"iban fr", "FR14 2004 1010 0505 0001 3M02 606", "[IBAN]"},
		{"ssn", "SSN 123-45-6789.", "SSN [SSN]."},
		{"phone intl", "call +1 415 555 2671 now", "call [PHONE] now"},
		{"phone uk intl", "+44 20 7946 0958", "[PHONE]"},
		{"phone compact intl", "+442079460958", "[PHONE]"},
		{"phone parens", "(415) 555-2671", "[PHONE]"},
		{"phone dashes", "415-555-2671", "[PHONE]"},
		{"phone dots", "415.555.2671", "[PHONE]"},
		{"phone 1-800", "1-800-555-1234", "[PHONE]"},
		{"phone fr", "06 12 34 56 78", "[PHONE]"},
		{"phone uk national", "020 7946 0958", "[PHONE]"},
		{"phone 00", "0044 20 7946 0958", "[PHONE]"},
		{"year then phone", "in 2024 415 555 2671", "in 2024 [PHONE]"},
		{"mixed", "Jane (jane@x.org, +33 6 12 34 56 78) paid with 4111111111111111.", "Jane ([EMAIL], [PHONE]) paid with [CARD]."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for _, h := range []func(abi.Request) abi.Verdict{Input, Output} {
				v := h(abi.Request{Text: tc.in})
				if v.Action != abi.Modify || v.Text != tc.want || len(v.Findings) == 0 {
					t.Fatalf("verdict %+v", v)
				}
			}
		})
	}
}

func TestBenignUnchanged(t *testing.T) {
	benign := []struct{ name, text string }{
		{"years and amounts", "In 2023 we shipped 12,480 parcels, up 18% on 2022, for $1,234.56."},
		{"dates and times", "Meet on 2024-01-15 at 14:00, or 15/01/2024 09:30."},
		{"versions ip", "Go 1.22.3 on 192.168.100.200 and 10.0.0.1, Python 3.11.4"},
		{"plain ids", "order 1234567890, timestamp 1700000000, ticket #4111"},
		{"luhn-failing card", "4111 1111 1111 1112"},
		{"zeros", "0000 0000 0000 0000"},
		{"isbn", "ISBN 978-3-16-148410-0 and 978-0-306-40615-7"},
		{"year range", "the years 1999-2001 and 2010 - 2020"},
		{"uuid", "id 550e8400-e29b-41d4-a716-446655440000"},
		{"pi", "pi is 3.14159265358979323846"},
		{"ssn invalid area", "000-12-3456 and 666-12-3456 and 900-12-3456"},
		{"ssn as part", "part no. 123-45-67890"},
		{"short phone", "ext 555-0100"},
		{"plus points", "+5 points and +100"},
		{"not email", "user@localhost, @mention, foo@bar, a@b.c"},
		{"iban bad check", "GB00 WEST 1234 5698 7654 32"},
		{"capitals", "NASA and the ESA work with DE and GB teams"},
		{"code", benchtext.Text4K},
	}
	for _, tc := range benign {
		t.Run(tc.name, func(t *testing.T) {
			if ms := Find(tc.text); len(ms) != 0 {
				t.Fatalf("false positive in %q: %+v -> %q", tc.text, ms, Redact(tc.text))
			}
		})
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"a@b.io", "4111 1111 1111 1111", "+1 (415) 555-2671", "GB82 WEST 1234 5698 7654 32", "123-45-6789", "((((1", "+", "0 0 0 0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms := Find(s)
		prev := 0
		for _, m := range ms {
			if m.Start < prev || m.End <= m.Start || m.End > len(s) {
				t.Fatalf("bad match %+v (prev end %d) in %q", m, prev, s)
			}
			if placeholders[m.Rule] == "" {
				t.Fatalf("unknown rule %q", m.Rule)
			}
			prev = m.End
		}
		out := Redact(s)
		if len(ms) == 0 && out != s {
			t.Fatalf("changed without a match: %q", s)
		}
		for _, m := range ms {
			if m.Rule != "card" {
				continue
			}
			d := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, s[m.Start:m.End])
			if len(d) < 13 || len(d) > 19 || d[0] == '0' || !luhn(d, []group{{start: 0, end: len(d)}}) {
				t.Fatalf("card match %q is not a card number", s[m.Start:m.End])
			}
		}
	})
}

func BenchmarkInput4K(b *testing.B) {
	r := abi.Request{Text: benchtext.Text4K}
	b.ReportAllocs()
	for b.Loop() {
		if v := Input(r); v.Action != abi.Allow {
			b.Fatal(v.Findings)
		}
	}
}
