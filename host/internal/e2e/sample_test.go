package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/moat-gateway/moat/host/internal/loopback"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// sampleConfig is the repository's sample config, which must work as is.
const sampleConfig = "../../../config.toml"

// startSample runs moat on the sample config.toml with only what a local
// test must change: loopback listeners, the stand-in as upstream (its key
// in a file), the audit file in a temp dir, and one client added with
// clientTOML inside its block. Pipelines, plugins, routes, limits, budgets
// and pricing are the sample's.
func startSample(t *testing.T, clientTOML string, si standin.Options) *env {
	t.Helper()
	var cfg map[string]any
	if _, err := toml.DecodeFile(sampleConfig, &cfg); err != nil {
		t.Fatalf("decoding the sample config: %v", err)
	}
	e, keyFile, hash := newEnv(t, "sample", si)
	table := func(name string) map[string]any {
		m, _ := cfg[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cfg[name] = m
		}
		return m
	}
	table("server")["listen"] = "127.0.0.1:0"
	up := table("upstream")
	up["base_url"] = e.si.URL()
	delete(up, "api_key_env")
	up["api_key_file"] = keyFile
	table("admin")["listen"] = "127.0.0.1:0"
	table("admin")["token_env"] = loopback.AdminTokenEnv
	table("audit")["path"] = e.lb.AuditPath()
	var body bytes.Buffer
	if err := toml.NewEncoder(&body).Encode(cfg); err != nil {
		t.Fatalf("encoding the config: %v", err)
	}
	fmt.Fprintf(&body, "\n[[clients]]\nid = \"app\"\nkey_sha256 = %q\n%s\n", hash, clientTOML)
	e.serve(t, body.Bytes())
	return e
}

// TestSampleClassifyRoute: the sample's classify route (format = "json",
// output = ["html-escape"]) answers parsed JSON; html-escape runs on the
// string values, not on the JSON around them.
func TestSampleClassifyRoute(t *testing.T) {
	e := startSample(t, `routes = ["classify"]`, standin.Options{})
	cases := []struct {
		name, reply string
		status      int
		want        string
	}{
		{"plain", `{"category": "billing", "urgent": true}`, 200, `{"category":"billing","urgent":true}`},
		{"fenced", "```json\n{\"category\": \"bug\", \"urgent\": false}\n```", 200, `{"category":"bug","urgent":false}`},
		{"schema violation", `{"category": "<b>x</b>", "urgent": true}`, 502, ""},
		{"not json", `the category is billing`, 502, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.si.SetReply(tc.reply)
			status, _, b := e.raw("POST", "/v1/routes/classify", []byte(`{"input":"I was charged twice & I'm <angry>"}`), e.auth())
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if status != 200 {
				return
			}
			var resp struct {
				Output any `json:"output"`
			}
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(resp.Output)
			if string(got) != tc.want {
				t.Fatalf("output %s, want %s", got, tc.want)
			}
		})
	}
}
