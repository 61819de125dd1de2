// Package htmlescape is the html-escape built-in: it escapes <, >, &, " and
// ' in model output so it can be placed in an HTML page as text.
//
// Streaming: the transform is per character (each of the five characters
// maps to a fixed entity, everything else to itself), so escaping the
// deltas of a stream one by one gives the same result as escaping the whole
// text: Escape(a+b) == Escape(a)+Escape(b). It needs no hold-back, and says
// so: on a partial (streamed) text its verdict's hold is 0.
package htmlescape

import (
	"html"
	"strings"

	"github.com/moat-gateway/moat/sdk/abi"
)

// Output is the output-phase handler. It takes no config. Text without any
// of the five characters is allowed unchanged, without allocating.
func Output(req abi.Request) abi.Verdict {
	v := abi.AllowVerdict()
	if strings.ContainsAny(req.Text, `<>&"'`) {
		v = abi.ModifyVerdict(Escape(req.Text), "html-escape: escaped HTML special characters")
	}
	if req.Context.Partial {
		v = v.WithHold(0)
	}
	return v
}

// Escape escapes <, >, &, " and ' as &lt; &gt; &amp; &#34; &#39;.
func Escape(s string) string { return html.EscapeString(s) }
