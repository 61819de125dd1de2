package gateway

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
)

func TestCheckRelay(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"mcp_tool_use", "compaction_delta"}, ""},
		{[]string{"mcp_tool_use", "tool_use"}, `"tool_use" is a type moat judges`},
		{[]string{"text_delta"}, `"text_delta" is a type moat judges`},
		{[]string{"ping"}, `"ping" is a type moat judges`},
	} {
		err := checkRelay(&config.Config{Upstream: config.Upstream{RelayUnknownTypes: tc.names}})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.names, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.names, err, tc.want)
		}
	}
}
