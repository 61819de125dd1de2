package secretredact

// The differential tests of the scanner: Find must return exactly what
// refFind, the scanner before the byte-class table and the skip loop,
// returns.

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/plugins/internal/benchtext"
	"github.com/moat-gateway/moat/sdk/abi"
)

func sameFindings(t *testing.T, text string) {
	t.Helper()
	if got, want := Find(text), refFind(text); !reflect.DeepEqual(got, want) {
		t.Fatalf("Find differs from the reference on %.300q:\n got %+v\nwant %+v", text, got, want)
	}
}

func TestFindMatchesReference(t *testing.T) {
	texts := []string{"", "a", "-", "=", ":", "sk", benchtext.Text4K,
		"id " + awsKey + " secret " + awsSecret, "x" + anthropicKey, "/" + anthropicKey, "+" + openaiProj, "a-" + pemKey,
		"abc-----BEGIN RSA PRIVATE KEY-----\nx", "sk-ant-" + pemKey, "Bearer " + jwtToken, "password=" + githubPAT,
		awsKey + strings.Repeat(" ", 150) + awsSecret, awsKey + strings.Repeat(" ", 250) + awsSecret,
	}
	for _, k := range []string{anthropicKey, openaiProj, openaiOld, awsKey, awsSecret, githubPAT, githubFine, slackToken, stripeKey, googleKey, jwtToken, pemKey} {
		for _, sep := range []string{" ", "=", ":", "-", "/", "+", "_", "\n", "\"", "é"} {
			texts = append(texts, "pre"+sep+k+sep+"post", k+sep+k, sep+k)
		}
	}
	for _, text := range texts {
		sameFindings(t, text)
	}
}

func FuzzFindMatchesReference(f *testing.F) {
	for _, s := range []string{"password=hunter22", "sk-ant-" + "x", "-----BEGIN ", "eyJa.eyJb.c", "Bearer ", "AKIA", "a: 'b",
		"id " + awsKey + " secret " + awsSecret, "x-" + pemKey, benchtext.Text4K[:600]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameFindings(t, s) })
}

// TestByteClasses checks the class table against the predicates it
// stands for, for every byte.
func TestByteClasses(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		if got, want := classOf[c]&clsToken != 0, 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'; got != want {
			t.Errorf("token class of %q = %v, want %v", c, got, want)
		}
		if got, want := classOf[c]&clsNoStart != 0, classOf[c]&clsToken != 0 || c == '/' || c == '+'; got != want {
			t.Errorf("no-start class of %q = %v, want %v", c, got, want)
		}
		if got, want := classOf[c]&clsSpecial != 0, c == '=' || c == ':' || c == '-'; got != want {
			t.Errorf("special class of %q = %v, want %v", c, got, want)
		}
	}
}

// BenchmarkFindReference4K is the scanner before the table, for comparison
// with BenchmarkInput4K in the same run.
func BenchmarkFindReference4K(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if ms := refFind(benchtext.Text4K); len(ms) != 0 {
			b.Fatal(ms)
		}
	}
}

// refFind is Find as it was before the byte-class table (the reference of
// the differential tests).
func refFind(text string) []abi.Finding {
	var ms []abi.Finding
	awsKeyEnd := -1 // end of the last AWS access key, to pair a secret key
	for i := 0; i < len(text); {
		c := text[i]
		if c == '=' || c == ':' {
			if s, e, kind := assignment(text, i); kind != "" {
				ms = append(ms, abi.Finding{Rule: kind, Start: s, End: e})
				i = e
				continue
			}
			i++
			continue
		}
		if c == '-' && strings.HasPrefix(text[i:], pemBegin) {
			if e, ok := pem(text, i); ok {
				ms = append(ms, abi.Finding{Rule: "private-key", Start: i, End: e})
				i = e
				continue
			}
		}
		if i > 0 && (isTokenByte(text[i-1]) || text[i-1] == '/' || text[i-1] == '+') {
			i++
			continue
		}
		if awsKeyEnd >= 0 && i-awsKeyEnd < 200 && isBase64Byte(c) {
			// The secret key usually follows its access key.
			if e := run(text, i, isBase64Byte); e-i == 40 && (e == len(text) || !isTokenByte(text[e])) && hasDigitAndLetter(text[i:e]) {
				ms = append(ms, abi.Finding{Rule: "aws-secret-key", Start: i, End: e})
				awsKeyEnd = -1
				i = e
				continue
			}
		}
		if !mayStartToken(text, i) {
			i++
			continue
		}
		if e, kind := tokenAt(text, i); kind != "" {
			ms = append(ms, abi.Finding{Rule: kind, Start: i, End: e})
			if kind == "aws-access-key" {
				awsKeyEnd = e
			}
			i = e
			continue
		}
		// Skip the rest of this word.
		for i++; i < len(text) && isTokenByte(text[i]); i++ {
		}
	}
	return ms
}
