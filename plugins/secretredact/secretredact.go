// Package secretredact is the secret-redact built-in: it replaces API keys,
// tokens, private keys and credential assignments with "[REDACTED:<kind>]",
// on input and on output.
//
// Kinds: anthropic (sk-ant-...), openai (sk-proj-..., sk-... with letters
// and digits), aws-access-key (AKIA/ASIA... 16), aws-secret-key (40
// characters after an access key or assigned to a secret-access-key name),
// github (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_), slack (xoxb-/xoxp-/xoxa-/
// xoxo-/xoxr-/xoxs-), stripe (sk_/rk_ live or test), google (AIza...), jwt
// (eyJ....eyJ....sig), private-key (PEM "-----BEGIN ... PRIVATE KEY-----"
// blocks, to the END line or, if none, the end of the text), bearer-token
// ("Bearer <token>"), and assignments "name = value" / "name: value" (also
// quoted, JSON and YAML) whose name ends in password/passwd/pwd (password),
// api_key/apikey/api-key (api-key), secret/token (secret). An unquoted
// assigned value is redacted when it looks like a credential (six or more
// characters including a digit, capital or symbol, or sixteen or more);
// placeholders such as ${VAR}, <key>, "****" are left alone.
//
// The scanner is hand-written (no regexp) and allocates nothing for text
// without a match. Redact is exported for the audit log.
package secretredact

import (
	"strings"

	"github.com/moat-gateway/moat/plugins/internal/redaction"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Input is the input-phase handler. It takes no config.
func Input(req abi.Request) abi.Verdict { return judge(req.Text) }

// Output is the output-phase handler. It takes no config. On a partial
// (streamed) text it reports its Hold.
func Output(req abi.Request) abi.Verdict {
	if !req.Context.Partial {
		return judge(req.Text)
	}
	ms := Find(req.Text)
	v := redaction.Verdict(req.Text, ms, redactedLabel, "secret-redact: redacted credentials")
	return v.WithHold(Hold(req.Text, ms))
}

func judge(text string) abi.Verdict {
	return redaction.Verdict(text, Find(text), redactedLabel, "secret-redact: redacted credentials")
}

// Redact returns text with every secret replaced by [REDACTED:<kind>].
func Redact(text string) string { return redaction.Replace(text, Find(text), redactedLabel) }

// redactedLabel is what replaces a secret of a kind.
func redactedLabel(kind string) string { return "[REDACTED:" + kind + "]" }

// Find returns the secrets in text, sorted and not overlapping; Rule is the
// kind. It returns nil when there is none.
func Find(text string) []abi.Finding {
	var ms []abi.Finding
	awsKeyEnd := -1 // end of the last AWS access key, to pair a secret key
	for i := 0; i < len(text); {
		// A byte after a token byte, '/' or '+' starts nothing: skip such
		// bytes, up to one that may start an assignment or a PEM block.
		for i > 0 && i < len(text) && classOf[text[i-1]]&clsNoStart != 0 && classOf[text[i]]&clsSpecial == 0 {
			i++
		}
		if i >= len(text) {
			break
		}
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
		if i > 0 && classOf[text[i-1]]&clsNoStart != 0 {
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

// Byte classes of the scanner.
const (
	clsToken   = 1 << iota // letter, digit, '_' or '-': part of a token
	clsNoStart             // a token byte, '/' or '+': no token starts after it
	clsSpecial             // '=', ':' (assignments) or '-' (PEM blocks)
)

// classOf maps a byte to its classes.
var classOf = func() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			t[i] |= clsToken | clsNoStart
		}
		switch c {
		case '/', '+':
			t[i] |= clsNoStart
		case '=', ':', '-':
			t[i] |= clsSpecial
		}
	}
	return t
}()

// mayStartToken is a cheap filter on the first two bytes of the token
// shapes, so most words are skipped without trying every prefix.
func mayStartToken(text string, i int) bool {
	if i+1 >= len(text) {
		return false
	}
	switch c, d := text[i], text[i+1]; c {
	case 's', 'r':
		return d == 'k'
	case 'A':
		return d == 'K' || d == 'S' || d == 'I'
	case 'g':
		return d == 'h' || d == 'i'
	case 'x':
		return d == 'o'
	case 'e':
		return d == 'y'
	case 'B', 'b':
		return d == 'e' || d == 'E'
	}
	return false
}

func isTokenByte(c byte) bool { return classOf[c]&clsToken != 0 }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isUpperAlnum(c byte) bool { return 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

func isBase64Byte(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }

func isJWTByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

func isBearerByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
}

// run returns the end of the run of bytes satisfying ok from i.
func run(text string, i int, ok func(byte) bool) int {
	for i < len(text) && ok(text[i]) {
		i++
	}
	return i
}

func hasDigitAndLetter(s string) bool {
	d, l := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = true
		case 'a' <= c|0x20 && c|0x20 <= 'z':
			l = true
		}
	}
	return d && l
}

type prefixRule struct {
	prefix string
	kind   string
	body   func(byte) bool
	min    int // minimum body length
	max    int // maximum body length, 0 = unbounded
	mixed  bool
}

// Longer prefixes come first where one is a prefix of another.
var prefixRules = []prefixRule{
	{"sk-ant-", "anthropic", isTokenByte, 20, 0, false},
	{"sk-proj-", "openai", isTokenByte, 20, 0, false},
	{"sk-svcacct-", "openai", isTokenByte, 20, 0, false},
	{"sk-admin-", "openai", isTokenByte, 20, 0, false},
	{"sk-", "openai", isTokenByte, 20, 0, true},
	{"sk_live_", "stripe", isAlnum, 16, 0, false},
	{"sk_test_", "stripe", isAlnum, 16, 0, false},
	{"rk_live_", "stripe", isAlnum, 16, 0, false},
	{"rk_test_", "stripe", isAlnum, 16, 0, false},
	{"AKIA", "aws-access-key", isUpperAlnum, 16, 16, false},
	{"ASIA", "aws-access-key", isUpperAlnum, 16, 16, false},
	{"ghp_", "github", isAlnum, 30, 0, false},
	{"gho_", "github", isAlnum, 30, 0, false},
	{"ghu_", "github", isAlnum, 30, 0, false},
	{"ghs_", "github", isAlnum, 30, 0, false},
	{"ghr_", "github", isAlnum, 30, 0, false},
	{"github_pat_", "github", isTokenByte, 22, 0, false},
	{"xoxb-", "slack", isTokenByte, 10, 0, false},
	{"xoxp-", "slack", isTokenByte, 10, 0, false},
	{"xoxa-", "slack", isTokenByte, 10, 0, false},
	{"xoxo-", "slack", isTokenByte, 10, 0, false},
	{"xoxr-", "slack", isTokenByte, 10, 0, false},
	{"xoxs-", "slack", isTokenByte, 10, 0, false},
	{"AIza", "google", isTokenByte, 30, 0, false},
}

// tokenAt matches a token shape at i (i is at a word start).
func tokenAt(text string, i int) (end int, kind string) {
	rest := text[i:]
	for k := range prefixRules {
		r := &prefixRules[k]
		if !strings.HasPrefix(rest, r.prefix) {
			continue
		}
		s := i + len(r.prefix)
		e := run(text, s, r.body)
		if e-s < r.min || r.max > 0 && e-s != r.max {
			continue
		}
		if e < len(text) && isTokenByte(text[e]) {
			continue
		}
		if r.mixed && !hasDigitAndLetter(text[s:e]) {
			continue
		}
		return e, r.kind
	}
	if strings.HasPrefix(rest, "eyJ") {
		if e, ok := jwt(text, i); ok {
			return e, "jwt"
		}
	}
	if len(rest) > 7 && strings.EqualFold(rest[:7], "bearer ") {
		s := i + 7
		e := run(text, s, isBearerByte)
		if e-s >= 16 && hasDigitAndLetter(text[s:e]) {
			return e, "bearer-token"
		}
	}
	return 0, ""
}

// jwt matches header.payload.signature with a JSON header and payload.
func jwt(text string, i int) (int, bool) {
	e1 := run(text, i, isJWTByte)
	if e1-i < 10 || e1 >= len(text) || text[e1] != '.' || !strings.HasPrefix(text[e1+1:], "ey") {
		return 0, false
	}
	e2 := run(text, e1+1, isJWTByte)
	if e2-e1 < 10 || e2 >= len(text) || text[e2] != '.' {
		return 0, false
	}
	return run(text, e2+1, isJWTByte), true
}

const (
	pemBegin = "-----BEGIN "
	pemEnd   = "-----END "
)

// pem matches a private key block from "-----BEGIN ... PRIVATE KEY-----"
// to its END line, or to the end of the text when it is cut off.
func pem(text string, i int) (int, bool) {
	line := text[i:]
	if n := strings.IndexByte(line, '\n'); n >= 0 {
		line = line[:n]
	}
	h := strings.Index(line, "PRIVATE KEY-----")
	if h < 0 {
		return 0, false
	}
	from := i + h + len("PRIVATE KEY-----")
	e := strings.Index(text[from:], pemEnd)
	if e < 0 {
		return len(text), true
	}
	e += from
	if k := strings.Index(text[e:], "KEY-----"); k >= 0 && k < 64 {
		return e + k + len("KEY-----"), true
	}
	return len(text), true
}

// assignment matches "name = value" or "name: value" at the separator sep.
func assignment(text string, sep int) (start, end int, kind string) {
	p, nameEnd := nameSpan(text, sep)
	name := text[p:nameEnd]
	kind = nameKind(name)
	if kind == "" {
		return 0, 0, ""
	}
	// The value: blanks, an optional quote, then the value.
	v := sep + 1
	if v < len(text) && text[v] == '=' { // "==" is a comparison, ":=" is fine
		return 0, 0, ""
	}
	for v < len(text) && (text[v] == ' ' || text[v] == '\t') {
		v++
	}
	if v >= len(text) {
		return 0, 0, ""
	}
	if e, k := tokenAt(text, v); k != "" {
		return v, e, k // a known token shape names itself
	}
	if q := text[v]; q == '"' || q == '\'' || q == '`' {
		e := v + 1
		for e < len(text) && e-v < 512 && text[e] != q && text[e] != '\n' {
			e++
		}
		if e >= len(text) || text[e] != q || e-v-1 < 4 || placeholder(text[v+1:e]) {
			return 0, 0, ""
		}
		return v + 1, e, kind
	}
	e := v
	for e < len(text) && e-v < 512 && !isValueStop(text[e]) {
		e++
	}
	val := text[v:e]
	if placeholder(val) || !credentialLike(val) {
		return 0, 0, ""
	}
	return v, e, kind
}

func isValueStop(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ';', '"', '\'', '`', '<', '>', ')', '}', ']', '&':
		return true
	}
	return false
}

// nameKind maps an assigned name to a kind by its ending.
func nameKind(name string) string {
	if len(name) < 3 {
		return ""
	}
	hasSuffix := func(s string) bool { return len(name) >= len(s) && strings.EqualFold(name[len(name)-len(s):], s) }
	switch {
	case hasSuffix("secret_access_key"), hasSuffix("secretaccesskey"), hasSuffix("secret-access-key"):
		return "aws-secret-key"
	case hasSuffix("password"), hasSuffix("passwd"), hasSuffix("pwd"):
		return "password"
	case hasSuffix("api_key"), hasSuffix("apikey"), hasSuffix("api-key"):
		return "api-key"
	case hasSuffix("secret"), hasSuffix("token"), hasSuffix("secret_key"), hasSuffix("private_key"), hasSuffix("access_key"):
		return "secret"
	}
	return ""
}

// placeholder reports values that are templates or masks, not secrets.
func placeholder(v string) bool {
	if v == "" {
		return true
	}
	switch v[0] {
	case '$', '{', '<', '%', '[':
		return true
	}
	same := true
	for i := 1; i < len(v); i++ {
		if v[i] != v[0] {
			same = false
			break
		}
	}
	if same {
		return true // "****", "xxxxxxxx"
	}
	switch strings.ToLower(v) {
	case "null", "none", "true", "false", "undefined", "required", "optional", "string", "redacted", "os.getenv", "process.env":
		return true
	}
	return strings.HasPrefix(v, "os.") || strings.HasPrefix(v, "process.env") || strings.HasPrefix(v, "env.") || strings.HasPrefix(v, "[REDACTED")
}

// credentialLike reports whether an unquoted value looks like a secret
// rather than a word of prose.
func credentialLike(v string) bool {
	if len(v) >= 16 {
		return true
	}
	if len(v) < 6 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 'a' || c > 'z' {
			return true
		}
	}
	return false
}
