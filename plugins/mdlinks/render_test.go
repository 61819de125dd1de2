package mdlinks

import (
	"bytes"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
)

// renderer renders like an app that trusts Markdown fully: raw HTML and
// every URL scheme pass through (goldmark's own safe mode would hide what
// the plugin must catch).
var renderer = goldmark.New(goldmark.WithRendererOptions(gmhtml.WithUnsafe()))

// unsafeTargets renders md and returns every URL attribute value and event
// handler in the HTML that would load or run something not allowed.
func unsafeTargets(t testing.TB, md string, allow map[string]bool) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := renderer.Convert([]byte(md), &buf); err != nil {
		t.Fatalf("rendering: %v", err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatalf("parsing rendered HTML: %v", err)
	}
	var bad []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				name := strings.ToLower(a.Key)
				if a.Val == Blocked || a.Val == "" {
					continue
				}
				if unsafeAttr(name, a.Val, func(s string) bool { return safeTarget(s, allow) }) {
					bad = append(bad, n.Data+" "+name+"="+a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return bad
}
