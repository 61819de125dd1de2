package invisible

import (
	"testing"
	"unicode"
)

func TestIs(t *testing.T) {
	tests := []struct {
		r    rune
		want bool
	}{
		{'a', false}, {' ', false}, {'\n', false}, {'\t', false}, {'é', false}, {'中', false},
		{0x1F600, false}, {0x05D0, false}, {0x0627, false},
		{0x00, true}, {0x1B, true}, {0x7F, true}, {0x85, true},
		{0x200B, true}, {0x200C, true}, {0x200D, true}, {0x2060, true}, {0xFEFF, true},
		{0x202E, true}, {0x2066, true}, {0x200F, true}, {0x061C, true}, {0x00AD, true},
		{0xE0041, true}, {0xE007F, true}, {0xFE0F, true}, {0xE0100, true},
		{0x3164, true}, {0x034F, true},
	}
	for _, tc := range tests {
		if got := Is(tc.r); got != tc.want {
			t.Errorf("Is(%U) = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// TestFastPathsAgree checks the range shortcuts against the full rule.
func TestFastPathsAgree(t *testing.T) {
	for r := rune(0xA0); r < 0xFE00; r++ {
		if r >= 0x0600 && r < 0x2100 {
			continue
		}
		full := unicode.Is(unicode.Cf, r) || r == 0x034F || r == 0x3164 || r == 0x115F || r == 0x1160
		if Is(r) != full {
			t.Errorf("Is(%U) = %v, full rule says %v", r, Is(r), full)
		}
	}
}
