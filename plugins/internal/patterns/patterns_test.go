package patterns

import (
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestRules(t *testing.T) {
	tests := []struct {
		name, cfg string
		names     []string
		err       string
	}{
		{"strings", `{"patterns":["a+","b"]}`, []string{`#0 "a+"`, `#1 "b"`}, ""},
		{"objects", `{"patterns":[{"name":"x","pattern":"a"},"b"]}`, []string{"x", `#1 "b"`}, ""},
		{"bad regex named", `{"patterns":[{"name":"broken","pattern":"("}]}`, nil, "compiling pattern broken"},
		{"empty", `{"patterns":[]}`, nil, `"patterns" is empty`},
		{"not a list", `{"patterns":"a"}`, nil, "decoding plugin config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Cache
			rules, err := c.Rules(&abi.Request{Config: []byte(tc.cfg)})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(rules) != len(tc.names) {
				t.Fatalf("rules %v err %v", rules, err)
			}
			for i, r := range rules {
				if r.Name != tc.names[i] {
					t.Fatalf("rule %d named %q, want %q", i, r.Name, tc.names[i])
				}
			}
		})
	}
}

func FuzzRules(f *testing.F) {
	f.Add([]byte(`{"patterns":["a",{"name":"b","pattern":"("}]}`))
	f.Add([]byte(`{"patterns":[null,1,[]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Cache
		rules, err := c.Rules(&abi.Request{Config: b})
		if err == nil && len(rules) == 0 {
			t.Fatal("no error and no rules")
		}
	})
}
