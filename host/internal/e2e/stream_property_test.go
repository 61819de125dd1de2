package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// propPlugins are the validators the property test streams through: one
// of each kind, incremental, with hold-backs longer than any match the
// generator makes (deny <= 30 bytes, secrets <= 120 bytes).
const propPlugins = `
[[plugins]]
name = "p-deny"
builtin = "deny-patterns"
streaming = "incremental"
hold_back = 64
config = { patterns = ["FORBIDDEN[- ][0-9]+", "禁止[0-9]{2,}"] }

[[plugins]]
name = "p-redact"
builtin = "secret-redact"
streaming = "incremental"
hold_back = 256

[[plugins]]
name = "p-escape"
builtin = "html-escape"
streaming = "incremental"
hold_back = 1
`

// propDeny is the deny client's patterns, to locate the first match.
var propDeny = regexp.MustCompile(`FORBIDDEN[- ][0-9]+|禁止[0-9]{2,}`)

// propSeed is the generator's seed; MOAT_PROP_SEED overrides it to replay
// or widen the search.
func propSeed(t *testing.T) int64 {
	seed := int64(20261127)
	if s := os.Getenv("MOAT_PROP_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MOAT_PROP_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (set MOAT_PROP_SEED to replay another)", seed)
	return seed
}

// Filler styles.
const (
	styleWords   = "words"    // ASCII words and spaces
	styleCJK     = "cjk"      // CJK text without any whitespace
	styleSpanCut = "span-cut" // CJK without whitespace around matches that contain whitespace, so the only safe cut points lie inside matches
)

var propWords = []string{"alpha", "beta", "gamma", "delta", "river", "stone", "quiet", "lamp", "north", "seven", "a", "of", "the"}

// filler returns about n bytes of text in a style.
func filler(r *rand.Rand, style string, n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		switch style {
		case styleWords:
			sb.WriteString(propWords[r.Intn(len(propWords))])
			if r.Intn(8) == 0 {
				sb.WriteByte('\n')
			} else {
				sb.WriteByte(' ')
			}
		default:
			// CJK Unified Ideographs, avoiding 禁 and 止 (the deny pattern).
			c := rune(0x4E00 + r.Intn(0x0FFF))
			if c == '禁' || c == '止' {
				c = '字'
			}
			sb.WriteRune(c)
			if r.Intn(12) == 0 {
				sb.WriteRune('。')
			}
		}
	}
	return sb.String()
}

func randFrom(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.Intn(len(alphabet))]
	}
	return string(b)
}

const (
	alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

// forbidden returns one pattern instance for a validator kind; spaced
// instances contain whitespace (a safe cut point inside the match).
// secret is the part that must never reach the client ("" for html).
func forbidden(r *rand.Rand, kind string, spaced bool) (text, secret string) {
	switch kind {
	case "deny":
		digits := randFrom(r, "0123456789", 1+r.Intn(6))
		switch {
		case spaced:
			return "FORBIDDEN " + digits, "FORBIDDEN"
		case r.Intn(2) == 0:
			return "FORBIDDEN-" + digits, "FORBIDDEN"
		default:
			return "禁止" + digits + "0", "禁止"
		}
	case "redact":
		// Credential values with a digit, a capital and a symbol, so the
		// assignment rule takes them.
		cred := randFrom(r, "abcdefghjkmnpqrstuvwxyz", 4) + "Q7#" + randFrom(r, alnum, 6+r.Intn(20))
		if spaced {
			switch r.Intn(3) {
			case 0:
				return "password = " + cred, cred
			case 1:
				return "api_key: " + cred, cred
			default:
				tok := randFrom(r, alnum, 24+r.Intn(30))
				return "Authorization: Bearer " + tok, tok
			}
		}
		switch r.Intn(3) {
		case 0:
			k := "sk-" + "ant-" + "api03-" + randFrom(r, alnum+"_-", 40+r.Intn(50)) + "AA"
			return k, k[10:]
		case 1:
			k := "ghp_" + randFrom(r, alnum, 36)
			return k, k[4:]
		default:
			// An assignment's value runs to the next whitespace, so
			// callers outside ASCII words end it with one.
			return "db_password=" + cred, cred
		}
	default: // html
		if spaced {
			return `<img src=x onerror="alert(1)">`, ""
		}
		return `<script>alert('x')</script>`, ""
	}
}

// genReply builds a reply of filler with 0 to 3 pattern instances at random
// places (rune boundaries). It returns the reply and the secrets in it.
func genReply(r *rand.Rand, kind, style string, withMatch bool) (string, []string) {
	n := 1
	if withMatch {
		n += 1 + r.Intn(3)
	}
	var sb strings.Builder
	var secrets []string
	for i := 0; i < n; i++ {
		sb.WriteString(filler(r, style, r.Intn(260)))
		if i == n-1 {
			break
		}
		text, secret := forbidden(r, kind, style == styleSpanCut || (style == styleWords && r.Intn(2) == 0))
		switch {
		case style == styleWords:
			text += " "
		case kind == "redact" && strings.ContainsAny(text, "=:"):
			// Credential assignments run to the next whitespace: end
			// them, or the rest of the reply is their value.
			text += "\n"
		}
		sb.WriteString(text)
		if secret != "" {
			secrets = append(secrets, secret)
		}
	}
	if sb.Len() == 0 {
		sb.WriteString("x")
	}
	return sb.String(), secrets
}

// TestStreamGuardProperty checks, for random replies streamed in random
// delta sizes (1..20 bytes), that no byte the output chain would reject or
// change reaches a streaming client:
//   - reject (deny-patterns): the released text is a prefix of the reply
//     before the first match, the stream ends with an error event, and the
//     pattern never appears in the raw SSE bytes;
//   - modify (secret-redact, html-escape): the concatenated released text
//     equals the chain applied to the whole reply (moat's non-streaming
//     answer to the same reply), so nothing is released half-transformed.
//
// Fillers are ASCII words, CJK without spaces (every rune boundary is a cut
// point), and CJK around matches that contain whitespace (the only
// whitespace cut points lie inside the matches).
func TestStreamGuardProperty(t *testing.T) {
	r := rand.New(rand.NewSource(propSeed(t)))
	sizes := r.Perm(20)
	repeats := 2
	if testing.Short() {
		sizes, repeats = sizes[:5], 1
	}
	// chain is the default output chain (secret-redact, then html-escape)
	// on the redactor's replies: both plugins give exact holds, so the
	// guard judges the tail once per step.
	kinds := []string{"deny", "redact", "html", "chain"}
	styles := []string{styleWords, styleCJK, styleSpanCut}
	checked := map[string]int{}
	for _, si := range sizes {
		ds := si + 1
		redactKey, redactBlock := extraClient(t, "redact", `output = ["p-redact"]`)
		escapeKey, escapeBlock := extraClient(t, "escape", `output = ["p-escape"]`)
		chainKey, chainBlock := extraClient(t, "chain", `output = ["p-redact", "p-escape"]`)
		e := start(t, envOpts{
			client: `output = ["p-deny"]`,
			extra:  propPlugins + redactBlock + escapeBlock + chainBlock,
			si:     standin.Options{DeltaSize: ds},
		})
		keys := map[string]string{"deny": e.key, "redact": redactKey, "html": escapeKey, "chain": chainKey}
		for _, kind := range kinds {
			for _, style := range styles {
				for rep := 0; rep < repeats; rep++ {
					withMatch := rep > 0 || r.Intn(4) != 0
					gen := kind
					if kind == "chain" {
						gen = "redact"
					}
					reply, secrets := genReply(r, gen, style, withMatch)
					name := fmt.Sprintf("delta=%d/%s/%s/%d", ds, kind, style, rep)
					e.si.SetReply(reply)
					raw := e.streamRaw(t, keys[kind], "go")
					evs := parseSSE(t, raw)
					text := strings.Join(textDeltas(t, evs), "")
					if !utf8.ValidString(text) {
						t.Errorf("%s: released text is not valid UTF-8", name)
					}
					status, whole := e.nonStreamText(t, keys[kind], "go")
					if kind == "deny" {
						checkRejectProperty(t, name, reply, text, raw, lastEvent(evs), status)
					} else {
						checkModifyProperty(t, name, reply, text, raw, lastEvent(evs), status, whole, secrets)
					}
					checked[kind]++
				}
			}
		}
		e.stop()
		if t.Failed() {
			t.Logf("stopping after the first failing delta size")
			break
		}
	}
	t.Logf("replies checked per validator: %v", checked)
}

func checkRejectProperty(t *testing.T, name, reply, text string, raw []byte, last string, oracleStatus int) {
	t.Helper()
	loc := propDeny.FindStringIndex(reply)
	if loc == nil {
		if oracleStatus != 200 || text != reply || last != "message_stop" {
			t.Errorf("%s: clean reply: oracle %d, stream ended %q, text equal %v", name, oracleStatus, last, text == reply)
		}
		return
	}
	if oracleStatus != 502 {
		t.Errorf("%s: the non-streaming chain did not reject (status %d): the generator is off", name, oracleStatus)
	}
	if last != "error" {
		t.Errorf("%s: stream with a match ended with %q, want error", name, last)
	}
	if !strings.HasPrefix(reply[:loc[0]], text) {
		t.Errorf("%s: released %q, which is not a prefix of the text before the match at %d: %q", name, text, loc[0], reply[:loc[0]])
	}
	for _, p := range []string{"FORBIDDEN", "禁止"} {
		if strings.Contains(text, p) {
			t.Errorf("%s: %q reached the client", name, p)
		}
	}
	// The error event names the pattern, never the matched text.
	for _, m := range propDeny.FindAllString(reply, -1) {
		if strings.Contains(string(raw), m) {
			t.Errorf("%s: matched text %q reached the client", name, m)
		}
	}
}

func checkModifyProperty(t *testing.T, name, reply, text string, raw []byte, last string, oracleStatus int, whole string, secrets []string) {
	t.Helper()
	if oracleStatus != 200 {
		t.Fatalf("%s: non-streaming oracle failed: %d %s", name, oracleStatus, whole)
	}
	if last != "message_stop" {
		t.Errorf("%s: stream ended with %q, want message_stop", name, last)
	}
	if text != whole {
		t.Errorf("%s: streamed text differs from the chain applied to the whole reply\nreply:    %q\nstreamed: %q\nwhole:    %q", name, reply, text, whole)
	}
	for _, s := range secrets {
		if strings.Contains(whole, s) {
			t.Errorf("%s: the chain leaves %q in the whole reply: the generator is off", name, s)
		}
		if strings.Contains(string(raw), s) {
			t.Errorf("%s: secret %q reached the client", name, s)
		}
	}
	if strings.ContainsAny(text, "<>") && strings.Contains(name, "/html/") {
		t.Errorf("%s: raw markup reached the client: %q", name, text)
	}
}
