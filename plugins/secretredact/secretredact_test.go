package secretredact

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Fake keys are built at run time so that no realistic-looking key appears
// in the source (repository secret scanners would flag it).
var (
	fakeBody     = strings.Repeat("FAKEfake0123", 4)
	anthropicKey = "sk-ant-" + "api03-" + fakeBody
	openaiProj   = "sk-" + "proj-" + fakeBody
	openaiOld    = "sk-" + fakeBody
	awsKey       = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	githubPAT    = "ghp_" + strings.Repeat("FAKE0", 8)
	githubFine   = "github_pat_" + strings.Repeat("FAKE_0", 6)
	slackToken   = "xoxb-" + "1234-5678-" + "FAKEfakeFAKE"
	stripeKey    = "sk_" + "live_" + fakeBody
	googleKey    = "AIza" + "Sy" + strings.Repeat("FAKE-0_", 5)
	jwtToken     = "eyJhbGciOiJIUzI1NiJ9" + "." + "eyJzdWIiOiJmYWtlIn0" + "." + "ZmFrZXNpZ25hdHVyZQ"
	pemKey       = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIFAKEFAKE\nFAKEFAKE==\n-----END RSA PRIVATE KEY-----"
)

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"anthropic", "key: " + anthropicKey + " ok", "key: [REDACTED:anthropic] ok"},
		{"anthropic bare", "use " + anthropicKey, "use [REDACTED:anthropic]"},
		{"openai proj", openaiProj, "[REDACTED:openai]"},
		{"openai classic", "(" + openaiOld + ")", "([REDACTED:openai])"},
		{"aws pair", "id " + awsKey + " secret " + awsSecret, "id [REDACTED:aws-access-key] secret [REDACTED:aws-secret-key]"},
		{"aws env", "AWS_SECRET_ACCESS_KEY=" + awsSecret, "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]"},
		{"github", "token " + githubPAT, "token [REDACTED:github]"},
		{"github fine", githubFine, "[REDACTED:github]"},
		{"slack", slackToken, "[REDACTED:slack]"},
		{"stripe", stripeKey, "[REDACTED:stripe]"},
		{"google", googleKey, "[REDACTED:google]"},
		{"jwt", "cookie=" + jwtToken + ";", "cookie=[REDACTED:jwt];"},
		{"bearer", "Authorization: Bearer abcdef0123456789abcdef", "Authorization: [REDACTED:bearer-token]"},
		{"pem", "key:\n" + pemKey + "\nend", "key:\n[REDACTED:private-key]\nend"},
		{"pem truncated", "-----BEGIN " + "PRIVATE KEY-----\nMIIabc", "[REDACTED:private-key]"},
		{"password env", "DB_PASSWORD=hunter22", "DB_PASSWORD=[REDACTED:password]"},
		{"password yaml", "  password: S3cr3t!", "  password: [REDACTED:password]"},
		{"password json", `{"password": "correct horse"}`, `{"password": "[REDACTED:password]"}`},
		{"api key quoted", `api_key = 'abcd1234'`, `api_key = '[REDACTED:api-key]'`},
		{"client secret", "client_secret: 9f8e7d6c5b4a", "client_secret: [REDACTED:secret]"},
		{"assignment with known token", "OPENAI_API_KEY=" + openaiProj, "OPENAI_API_KEY=[REDACTED:openai]"},
		{"long lowercase", "auth_token=abcdefghijklmnopqrstu", "auth_token=[REDACTED:secret]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
			for _, h := range []func(abi.Request) abi.Verdict{Input, Output} {
				if v := h(abi.Request{Text: tc.in}); v.Action != abi.Modify || v.Text != tc.want || len(v.Findings) == 0 {
					t.Fatalf("verdict %+v", v)
				}
			}
		})
	}
}

func TestBenignUnchanged(t *testing.T) {
	benign := []struct{ name, text string }{
		{"prose", "The password: make it strong. Ask for a token: it is free."},
		{"sk words", "scikit-learn (sk-learn) and task-force, sk-1 and risk-free"},
		{"placeholders", "API_KEY=${API_KEY}\npassword: <your password>\ntoken = \"****\"\nsecret: os.environ['X']"},
		{"lowercase short", "password: letmein"},
		{"comparison", "if password == stored { ok }"},
		{"token count", "max_tokens: 1024, token_count=5"},
		{"aws words", "AKIA is the prefix; ASIAN food"},
		{"eyj word", "eyJust a word. eyJhbGciOiJ without dots"},
		{"github words", "ghp_ is the prefix of classic tokens"},
		{"begin cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"bearer word", "The bearer of this letter is welcome."},
		{"code", benchtext.Text4K},
	}
	for _, tc := range benign {
		t.Run(tc.name, func(t *testing.T) {
			if ms := Find(tc.text); len(ms) != 0 {
				t.Fatalf("false positive: %+v -> %q", ms, Redact(tc.text))
			}
		})
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"password=hunter22", "sk-ant-" + "x", "-----BEGIN ", "eyJa.eyJb.c", "Bearer ", "AKIA", "a: 'b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms := Find(s)
		prev := 0
		for _, m := range ms {
			if m.Start < prev || m.End <= m.Start || m.End > len(s) || m.Rule == "" {
				t.Fatalf("bad match %+v (prev end %d) in %q", m, prev, s)
			}
			prev = m.End
		}
		if out := Redact(s); len(ms) == 0 && out != s {
			t.Fatalf("changed without a match: %q", s)
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
