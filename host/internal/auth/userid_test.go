package auth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/fault"
)

func TestCheckUserID(t *testing.T) {
	cases := []struct {
		name string
		id   string
		ok   bool
	}{
		{"plain", "user-42", true},
		{"email", "alice@example.com", true},
		{"inner space", "Alice Smith", true},
		{"non-latin", "utilisateur-é-日本", true},
		{"emoji", "user-🦀", true},
		{"256 bytes", strings.Repeat("u", 256), true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("u", 257), false},
		{"1 MB", strings.Repeat("u", 1<<20), false},
		{"newline", "alice\nbob", false},
		{"carriage return", "alice\r", false},
		{"tab", "alice\tbob", false},
		{"NUL", "alice\x00", false},
		{"DEL", "alice\x7f", false},
		{"C1 control", "alice\u0085", false},
		{"bidi override", "alice\u202e", false},
		{"zero-width space", "ali\u200bce", false},
		{"zero-width joiner", "ali\u200dce", false},
		{"tag character", "alice\U000E0041", false},
		{"no-break space", "alice\u00a0bob", false},
		{"line separator", "alice\u2028", false},
		{"invalid utf-8", "alice\xff", false},
		{"leading space", " alice", false},
		{"trailing space", "alice ", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUserID("metadata.user_id", tc.id)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused %q: %v", tc.id, err)
				}
				return
			}
			var ae *fault.Error
			if !errors.As(err, &ae) {
				t.Fatalf("accepted %q", tc.id)
			}
			if ae.Kind != fault.InvalidRequest {
				t.Fatalf("got %s, want %s", ae.Kind, fault.InvalidRequest)
			}
			if !strings.Contains(ae.Msg, "metadata.user_id") || !strings.Contains(ae.Msg, "256") {
				t.Fatalf("message %q does not name the field and the cap", ae.Msg)
			}
			if len(tc.id) > 3 && strings.Contains(ae.Msg, tc.id) {
				t.Fatalf("message %q echoes the id", ae.Msg)
			}
		})
	}
}

// FuzzCheckUserID: whatever CheckUserID accepts is short, valid UTF-8 and
// printable, so it can be logged, keyed and audited as one line.
func FuzzCheckUserID(f *testing.F) {
	for _, s := range []string{"user-42", "a\nb", "\x00", "\u202e", strings.Repeat("x", 300), " a", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckUserID("x", id) != nil {
			return
		}
		if id == "" || len(id) > MaxUserIDLen || !utf8.ValidString(id) || strings.TrimSpace(id) != id {
			t.Fatalf("accepted %q", id)
		}
		for _, r := range id {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\n' || r == '\u2028' {
				t.Fatalf("accepted %q with %U", id, r)
			}
		}
	})
}

func TestCredentialHash(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	k := "moat_" + strings.Repeat("k", 43)
	cases := []struct {
		name string
		hdr  http.Header
		same string // "" = want ""; else want equal to CredentialHash of x-api-key = same
	}{
		{"none", h(), ""},
		{"x-api-key", h("X-Api-Key", k), k},
		{"bearer", h("Authorization", "Bearer "+k), k},
		{"bearer with spaces", h("Authorization", "  Bearer   "+k+" "), k},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CredentialHash(tc.hdr)
			if tc.same == "" {
				if got != "" {
					t.Fatalf("CredentialHash = %q, want empty", got)
				}
				return
			}
			want := CredentialHash(h("X-Api-Key", tc.same))
			if got != want || len(got) != 16 || strings.Contains(got, tc.same) {
				t.Fatalf("CredentialHash = %q, want %q (16 hex)", got, want)
			}
		})
	}
	if CredentialHash(h("X-Api-Key", k)) == CredentialHash(h("X-Api-Key", k+"x")) {
		t.Fatal("two credentials share a hash")
	}
}
