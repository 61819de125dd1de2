package exchange

import "testing"

// TestClientAllowsModel: an empty list allows every model; a name matches
// exactly, and a trailing * matches a prefix.
func TestClientAllowsModel(t *testing.T) {
	cases := []struct {
		name   string
		models []string
		model  string
		want   bool
	}{
		{"empty allows all", nil, "claude-opus-4-1", true},
		{"exact", []string{"claude-haiku-4-5"}, "claude-haiku-4-5", true},
		{"exact only", []string{"claude-haiku-4-5"}, "claude-haiku-4-5-x", false},
		{"prefix", []string{"claude-haiku-*"}, "claude-haiku-4-5", true},
		{"other prefix", []string{"claude-haiku-*"}, "claude-opus-4-1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := Client{Models: tc.models}
			if got := cl.AllowsModel(tc.model); got != tc.want {
				t.Fatalf("AllowsModel(%q) with %q = %v, want %v", tc.model, tc.models, got, tc.want)
			}
		})
	}
}

// TestClientJudges: an empty list judges every part; a list judges only
// the parts it names.
func TestClientJudges(t *testing.T) {
	cases := []struct {
		name  string
		judge []string
		part  string
		want  bool
	}{
		{"empty judges all", nil, "tools", true},
		{"listed", []string{"user", "tools"}, "tools", true},
		{"unlisted", []string{"user"}, "system", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := Client{Judge: tc.judge}
			if got := cl.Judges(tc.part); got != tc.want {
				t.Fatalf("Judges(%q) with %q = %v, want %v", tc.part, tc.judge, got, tc.want)
			}
		})
	}
}
