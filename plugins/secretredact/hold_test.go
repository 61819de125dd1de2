package secretredact

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

func key(prefix string, n int) string { return prefix + strings.Repeat("Ab3", n/3+1)[:n] }

func TestHold(t *testing.T) {
	anth := key("sk-"+"ant-api03-", 40)
	tests := []struct {
		name, text string
		want       int // bytes held
	}{
		{"empty", "", 0},
		{"prose ending in blank", "The weather is fine today. ", 0},
		{"prose mid-word", "The weather is fi", 2},
		{"token growing", "key " + anth[:12], 12},
		{"complete token then blank", "key " + anth + " and", 3},
		{"bearer then blank", "Authorization: Bearer ", 7},
		{"bearer and partial token", "Authorization: bearer abc", 10},
		{"assignment without value", "password = ", 11},
		{"credential name alone", "so the password ", 9},
		{"assignment open unquoted", "password = hunter2x", 19},
		{"assignment closed", "password = hunter2x; ok", 2},
		{"assignment open quoted", `api_key: "my pass`, 17},
		{"aws key near the end", "AKIAABCDEFGHIJKLMNOP and then", 29},
		{"assignment closed quoted", `api_key: "my pass phrase" then`, 4},
		{"not a credential name", "note: the", 3},
		{"pem header partial", "x\n-----BEGIN RSA PRIV", 19},
		{"pem body open", "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc ", len("-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc ")},
		{"earlier line settled", "password = x1234567\nplain words ", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hold(tc.text, Find(tc.text)); got != tc.want {
				t.Fatalf("Hold(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
}

func TestOutputReportsHoldOnPartial(t *testing.T) {
	v := Output(abi.Request{Phase: abi.PhaseOutput, Text: "ok sk-an", Context: abi.Context{Partial: true}})
	if v.Hold == nil || *v.Hold != 5 {
		t.Fatalf("partial verdict %+v, want hold 5", v)
	}
	if v := Output(abi.Request{Phase: abi.PhaseOutput, Text: "ok sk-an"}); v.Hold != nil {
		t.Fatalf("whole-text verdict carries a hold: %+v", v)
	}
}

// FuzzHold checks Hold's promise as the stream guard uses it: whatever
// text c follows a, redacting a's released part on its own and the held
// tail with c, later and without that part, gives what redacting a+c at
// once gives; and the secrets found before the hold are final.
func FuzzHold(f *testing.F) {
	anth := key("sk-"+"ant-api03-", 40)
	for _, s := range [][2]string{
		{"key " + anth[:20], anth[20:] + " done"},
		{"password = hun", "ter2x99 ok"},
		{`api_key: "my pa`, `ss phrase" x`},
		{"Authorization: Bearer ", "abcdef0123456789abcdef ok"},
		{"-----BEGIN RSA PRIV", "ATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"},
		{"AKIAABCDEFGHIJKLMNOP ", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12 x"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0", ".sig_abc-123 end"},
		{"token: ", "ghp_" + strings.Repeat("a1", 20)},
		{"plain text ", "more plain text"},
		{"峷api_key: fgpk", "Q7#ml7nkWkItNkxwb5NvQqojKTn\n"},
		{"the password ", "= hunter2secret99"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, c string) {
		p := len(a) - Hold(a, Find(a))
		if p < 0 || p > len(a) {
			t.Fatalf("hold out of range: %d of %d", len(a)-p, len(a))
		}
		before := func(ms []abi.Finding) []abi.Finding {
			var out []abi.Finding
			for _, m := range ms {
				if m.Start < p {
					out = append(out, m)
				}
			}
			return out
		}
		if got, want := Redact(a[:p])+Redact(a[p:]+c), Redact(a+c); got != want {
			t.Fatalf("a=%q c=%q p=%d: released then held gives %q, whole gives %q", a, c, p, got, want)
		}
		fa, fac := before(Find(a)), before(Find(a+c))
		if len(fa) != len(fac) {
			t.Fatalf("a=%q c=%q p=%d: findings before the hold %+v, with c %+v", a, c, p, fa, fac)
		}
		for i := range fa {
			if fa[i] != fac[i] || fa[i].End > p {
				t.Fatalf("a=%q c=%q p=%d: finding %+v became %+v", a, c, p, fa[i], fac[i])
			}
		}
	})
}
