package gateway

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/fault"
)

func TestModelsPath(t *testing.T) {
	cases := []struct {
		name, id, query string
		want            string // "" = refused with 404
	}{
		{"list", "", "", "/v1/models"},
		{"plain id", "claude-sonnet-5-5", "", "/v1/models/claude-sonnet-5-5"},
		{"question mark", "..?a=b", "", "/v1/models/..%3Fa=b"},
		{"slash", "a/b", "", "/v1/models/a%2Fb"},
		{"hash", "a#b", "", "/v1/models/a%23b"},
		{"traversal in one segment", "../../messages", "", "/v1/models/..%2F..%2Fmessages"},
		{"percent", "a%2Fb", "", "/v1/models/a%252Fb"},
		{"dot", ".", "", ""},
		{"dot dot", "..", "", ""},
		{"query re-encoded", "", "limit=5&after_id=x%26y", "/v1/models?after_id=x%26y&limit=5"},
		{"query with id", "m", "beta=true", "/v1/models/m?beta=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := modelsPath(tc.id, tc.query)
			if tc.want == "" {
				if !errors.Is(err, fault.NotFound) {
					t.Fatalf("modelsPath(%q) = %q, %v; want a %s", tc.id, got, err, fault.NotFound)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("modelsPath(%q, %q) = %q, %v; want %q", tc.id, tc.query, got, err, tc.want)
			}
		})
	}
	if _, err := modelsPath("", "a=%zz"); err == nil {
		t.Fatal("a malformed query was relayed")
	}
}

// FuzzModelsPath: whatever the id, the upstream URL has exactly one path
// segment after /v1/models that decodes back to the id, no query unless
// the client sent one, and no fragment.
func FuzzModelsPath(f *testing.F) {
	for _, s := range []string{"claude", "..?a=b", "a/b", "%2F", "#x", "..", "a%252F", "\x00", "é"} {
		f.Add(s, "")
	}
	f.Add("m", "limit=5")
	f.Fuzz(func(t *testing.T, id, query string) {
		p, err := modelsPath(id, query)
		if err != nil {
			return
		}
		u, err := url.Parse("https://api.example" + p)
		if err != nil {
			t.Fatalf("modelsPath(%q) = %q does not parse: %v", id, p, err)
		}
		if u.Fragment != "" || (query == "" && u.RawQuery != "") {
			t.Fatalf("modelsPath(%q, %q) = %q adds a query or fragment", id, query, p)
		}
		if id == "" {
			if u.Path != "/v1/models" {
				t.Fatalf("list path %q", u.Path)
			}
			return
		}
		seg, ok := strings.CutPrefix(u.EscapedPath(), "/v1/models/")
		if !ok || strings.Contains(seg, "/") || seg == "." || seg == ".." {
			t.Fatalf("modelsPath(%q) = %q: not one segment", id, p)
		}
		if dec, err := url.PathUnescape(seg); err != nil || dec != id {
			t.Fatalf("modelsPath(%q) segment %q decodes to %q, %v", id, seg, dec, err)
		}
	})
}
