package standin_test

import (
	"testing"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// TestSetAPIKeys: a rotation window accepts both keys, then only the new
// one; no keys accepts any key but still needs one.
func TestSetAPIKeys(t *testing.T) {
	s := startServer(t, standin.Options{})
	const next = "sk-ant-test-next"
	steps := []struct {
		name string
		keys []string
		want map[string]int // key sent -> status
	}{
		{"initial", nil, map[string]int{testKey: 200, next: 401}},
		{"window", []string{testKey, next}, map[string]int{testKey: 200, next: 200, "other": 401}},
		{"rotated", []string{next}, map[string]int{testKey: 401, next: 200}},
		{"any", []string{}, map[string]int{"whatever": 200, "": 401}},
		{"empty strings ignored", []string{"", next}, map[string]int{next: 200, testKey: 401}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.keys != nil {
				s.SetAPIKeys(st.keys...)
			}
			for key, status := range st.want {
				hdr := map[string]string{"x-api-key": key}
				resp, body := rawDo(t, s, "GET", "/v1/models", "", hdr)
				if resp.StatusCode != status {
					t.Errorf("key %q: status %d, want %d: %s", key, resp.StatusCode, status, body)
				}
			}
		})
	}
}
