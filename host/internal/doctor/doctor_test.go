package doctor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
)

// Test-only fake keys, built at run time.
var (
	fakeAnthropicKey = "sk-" + "ant-" + "api03-" + strings.Repeat("TESTONLYfake", 6)
	plainUpstreamKey = "test-upstream-key-0123456789"
)

const goodTOML = `
environment = "production"

[server]
listen = "127.0.0.1:8080"

[upstream]
api_key_file = "{{dir}}/anthropic.key"

[limits]
user_rate = "20-M"

[[budgets]]
scope = "global"
usd = 100
alerts = [0.5, 0.8]

[pipeline]
input = ["strip"]
output = ["json-check"]

[[plugins]]
name = "strip"
builtin = "strip-markers"

[[plugins]]
name = "json-check"
builtin = "json-schema"

[[plugins]]
name = "custom"
path = "custom.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[clients]]
id = "app"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
wrap_user_input = true

[[routes]]
name = "summarize"
model = "claude-test"
task = "Summarize {{input}}"
format = "json"
  [routes.schema]
  type = "object"

[admin]
listen = "127.0.0.1:9090"

[audit]
content = "hmac"
`

type fixture struct {
	replace [][2]string            // edits to goodTOML
	env     map[string]string      // overrides of the good environment
	modes   map[string]os.FileMode // file name in the temp dir -> mode; 0 removes it
	files   map[string]string      // extra files (mode 0600)
}

func (f fixture) run(t *testing.T) []Result {
	t.Helper()
	dir := t.TempDir()
	toml := strings.ReplaceAll(goodTOML, "{{dir}}", dir)
	for _, r := range f.replace {
		old := strings.ReplaceAll(r[0], "{{dir}}", dir)
		if !strings.Contains(toml, old) {
			t.Fatalf("fixture edit %q matches nothing", r[0])
		}
		toml = strings.Replace(toml, old, strings.ReplaceAll(r[1], "{{dir}}", dir), 1)
	}
	files := map[string]string{
		"config.toml":   toml,
		"anthropic.key": fakeAnthropicKey + "\n",
		"audit.jsonl":   "",
	}
	for name, content := range f.files {
		files[name] = content
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		mode, set := f.modes[name]
		switch {
		case set && mode == 0:
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		case set:
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.Chmod(p, 0o600); err != nil { // whatever the umask
				t.Fatal(err)
			}
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MOAT_ADMIN_TOKEN": "test-admin-token", "MOAT_AUDIT_HMAC_KEY": "test-hmac-key"}
	for k, v := range f.env {
		env[k] = v
	}
	return Run(cfg, func(k string) string { return env[k] })
}

func byName(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func TestGoodConfigPassesEverything(t *testing.T) {
	rs := fixture{}.run(t)
	if len(rs) < 15 {
		t.Fatalf("only %d checks ran", len(rs))
	}
	for _, r := range rs {
		if r.Status != Pass {
			t.Errorf("%s: %s: %s (fix: %s)", r.Name, r.Status, r.Detail, r.Fix)
		}
	}
	var buf bytes.Buffer
	if Print(&buf, rs) {
		t.Fatal("Print reported a failure for a passing config")
	}
	if strings.Contains(buf.String(), fakeAnthropicKey) {
		t.Fatal("doctor printed the upstream key")
	}
	t.Log("\n" + buf.String())
}

func TestChecks(t *testing.T) {
	cases := []struct {
		name string
		fx   fixture
		want map[string]string // check name -> status
		text string            // substring of the wanted checks' details
	}{
		{"key from env", fixture{
			replace: [][2]string{{`api_key_file = "{{dir}}/anthropic.key"`, `api_key_env = "MOAT_TEST_ANTHROPIC"`}},
			env:     map[string]string{"MOAT_TEST_ANTHROPIC": fakeAnthropicKey},
		}, map[string]string{"upstream key source": Pass}, ""},
		{"key env unset", fixture{
			replace: [][2]string{{`api_key_file = "{{dir}}/anthropic.key"`, `api_key_env = "MOAT_TEST_ANTHROPIC"`}},
		}, map[string]string{"upstream key source": Fail}, "MOAT_TEST_ANTHROPIC"},
		{"key env not anthropic", fixture{
			replace: [][2]string{{`api_key_file = "{{dir}}/anthropic.key"`, `api_key_env = "MOAT_TEST_ANTHROPIC"`}},
			env:     map[string]string{"MOAT_TEST_ANTHROPIC": plainUpstreamKey},
		}, map[string]string{"upstream key source": Warn}, ""},
		{"key file missing", fixture{modes: map[string]os.FileMode{"anthropic.key": 0}},
			map[string]string{"upstream key source": Fail}, "cannot read"},
		{"key file empty", fixture{files: map[string]string{"anthropic.key": "\n"}},
			map[string]string{"upstream key source": Fail}, "empty"},
		{"key file world-readable", fixture{modes: map[string]os.FileMode{"anthropic.key": 0o644}},
			map[string]string{"upstream key file mode": Fail}, "world-readable"},
		{"key file group-readable", fixture{modes: map[string]os.FileMode{"anthropic.key": 0o640}},
			map[string]string{"upstream key file mode": Warn}, "group-readable"},
		{"config world-readable", fixture{modes: map[string]os.FileMode{"config.toml": 0o644}},
			map[string]string{"config file mode": Warn}, "world-readable"},
		{"config world-writable", fixture{modes: map[string]os.FileMode{"config.toml": 0o666}},
			map[string]string{"config file mode": Fail}, "world-writable"},
		{"local keys world-writable", fixture{files: map[string]string{".moat-local-keys.toml": ""}, modes: map[string]os.FileMode{".moat-local-keys.toml": 0o646}},
			map[string]string{"local client keys file mode": Fail}, "world-writable"},
		{"key-shaped text in a route system file", fixture{
			replace: [][2]string{{`task = "Summarize {{input}}"`, "task = \"Summarize {{input}}\"\nsystem_file = \"{{dir}}/system.txt\""}},
			files:   map[string]string{"system.txt": "You are helpful. Debug key: " + fakeAnthropicKey},
		}, map[string]string{"key never forwarded": Fail}, `routes["summarize"].system`},
		{"upstream key pasted in a task", fixture{
			replace: [][2]string{
				{`api_key_file = "{{dir}}/anthropic.key"`, `api_key_env = "MOAT_TEST_ANTHROPIC"`},
				{`task = "Summarize {{input}}"`, `task = "Summarize {{input}} with ` + plainUpstreamKey + `"`},
			},
			env: map[string]string{"MOAT_TEST_ANTHROPIC": plainUpstreamKey},
		}, map[string]string{"key never forwarded": Fail, "upstream key source": Warn}, `routes["summarize"].task`},
		{"plain http upstream", fixture{replace: [][2]string{{"[upstream]", "[upstream]\nbase_url = \"http://api.example.com\""}}},
			map[string]string{"upstream over TLS": Fail}, "in clear"},
		{"plain http test upstream", fixture{replace: [][2]string{{"[upstream]", "[upstream]\nbase_url = \"http://127.0.0.1:9999\""}}},
			map[string]string{"upstream over TLS": Warn}, "loopback"},
		{"default environment", fixture{replace: [][2]string{{`environment = "production"`, ``}}},
			map[string]string{"environment named": Warn}, "development"},
		{"no budgets", fixture{replace: [][2]string{{"[[budgets]]\nscope = \"global\"\nusd = 100\nalerts = [0.5, 0.8]", ""}}},
			map[string]string{"budgets and alerts": Warn}, "unbounded"},
		{"budget without alerts", fixture{replace: [][2]string{{"alerts = [0.5, 0.8]", ""}}},
			map[string]string{"budgets and alerts": Warn}, "no alert"},
		{"no user rate", fixture{replace: [][2]string{{`user_rate = "20-M"`, ""}}},
			map[string]string{"per-user rate limits": Warn}, "app"},
		{"client does not wrap", fixture{replace: [][2]string{{"wrap_user_input = true", ""}}},
			map[string]string{"user input wrapped": Warn}, "app"},
		{"empty input chain", fixture{replace: [][2]string{{`input = ["strip"]`, `input = []`}}},
			map[string]string{"input sanitizers": Fail}, "[pipeline].input"},
		{"client disables sanitizers", fixture{replace: [][2]string{{"wrap_user_input = true", "wrap_user_input = true\ninput = []"}}},
			map[string]string{"input sanitizers": Fail}, `clients["app"].input`},
		{"custom sanitizer only", fixture{replace: [][2]string{{`input = ["strip"]`, `input = ["custom"]`}}},
			map[string]string{"input sanitizers": Warn}, "custom"},
		{"json route without schema", fixture{replace: [][2]string{{"  [routes.schema]\n  type = \"object\"", ""}}},
			map[string]string{"output validators": Warn}, `routes["summarize"]`},
		{"no output chain", fixture{replace: [][2]string{{`output = ["json-check"]`, ""}}},
			map[string]string{"output validators": Warn}, "no output validator"},
		{"audit disabled and failing open", fixture{replace: [][2]string{{`content = "hmac"`, "content = \"hmac\"\ndisabled = true\nfail_open = true"}}},
			map[string]string{"audit on": Fail, "audit fails closed": Fail}, "disabled"},
		{"audit file readable", fixture{modes: map[string]os.FileMode{"audit.jsonl": 0o644}},
			map[string]string{"audit file mode": Fail}, "0644"},
		{"audit file not yet created", fixture{modes: map[string]os.FileMode{"audit.jsonl": 0}},
			map[string]string{"audit file mode": Pass}, "does not exist yet"},
		{"audit full content", fixture{replace: [][2]string{{`content = "hmac"`, `content = "full"`}}},
			map[string]string{"audit content": Warn}, "full prompts"},
		{"audit hmac without key", fixture{env: map[string]string{"MOAT_AUDIT_HMAC_KEY": ""}},
			map[string]string{"audit content": Fail}, "MOAT_AUDIT_HMAC_KEY"},
		{"audit chain key readable by others", fixture{files: map[string]string{".moat-audit-chain.key": "0123456789abcdef0123456789abcdef"}, modes: map[string]os.FileMode{".moat-audit-chain.key": 0o644}},
			map[string]string{"audit chain key": Fail}, "re-forge"},
		{"audit chain key too short", fixture{files: map[string]string{".moat-audit-chain.key": "short"}},
			map[string]string{"audit chain key": Fail}, "at least 16"},
		{"audit chain key env empty", fixture{replace: [][2]string{{`content = "hmac"`, "content = \"hmac\"\nchain_key_env = \"MOAT_CHAIN\""}}},
			map[string]string{"audit chain key": Fail}, "MOAT_CHAIN"},
		{"audit checkpoint forged", fixture{files: map[string]string{".moat-audit-chain.key": "0123456789abcdef0123456789abcdef",
			".moat-audit-checkpoint": `{"moat_audit_checkpoint":2,"seq":1,"head":"` + strings.Repeat("a", 64) + `","time":"2026-01-01T00:00:00Z","key_id":"x","log":"/a","mac":"` + strings.Repeat("b", 64) + `"}`}},
			map[string]string{"audit checkpoint": Fail}, "chain key id"},
		{"limits fail open", fixture{replace: [][2]string{{`user_rate = "20-M"`, "user_rate = \"20-M\"\nfail_open = true"}}},
			map[string]string{"limits fail closed": Warn}, "fail_open"},
		{"public listener", fixture{replace: [][2]string{{`listen = "127.0.0.1:8080"`, `listen = "0.0.0.0:8080"`}}},
			map[string]string{"listener": Warn}, "plain HTTP"},
		{"all interfaces listener", fixture{replace: [][2]string{{`listen = "127.0.0.1:8080"`, `listen = ":8080"`}}},
			map[string]string{"listener": Warn}, ":8080"},
		{"localhost listener", fixture{replace: [][2]string{{`listen = "127.0.0.1:8080"`, `listen = "localhost:8080"`}}},
			map[string]string{"listener": Pass}, "loopback"},
		{"ipv6 loopback listener", fixture{replace: [][2]string{{`listen = "127.0.0.1:8080"`, `listen = "[::1]:8080"`}}},
			map[string]string{"listener": Pass}, "loopback"},
		{"trust everyone as proxy", fixture{replace: [][2]string{{`listen = "127.0.0.1:8080"`, "listen = \"127.0.0.1:8080\"\ntrusted_proxies = [\"0.0.0.0/0\"]"}}},
			map[string]string{"trusted proxies": Warn}, "forge"},
		{"public admin", fixture{replace: [][2]string{{`listen = "127.0.0.1:9090"`, `listen = "0.0.0.0:9090"`}}},
			map[string]string{"admin listener": Fail}, "reachable"},
		{"admin without token", fixture{env: map[string]string{"MOAT_ADMIN_TOKEN": ""}},
			map[string]string{"admin token": Fail}, "MOAT_ADMIN_TOKEN"},
		{"admin disabled", fixture{replace: [][2]string{{`listen = "127.0.0.1:9090"`, ``}}, env: map[string]string{"MOAT_ADMIN_TOKEN": ""}},
			map[string]string{"admin listener": Pass}, "disabled"},
		{"jwt without issuer", fixture{replace: [][2]string{{"[admin]", "[jwt]\nenabled = true\nclient = \"app\"\nsecret_env = \"S\"\n\n[admin]"}}},
			map[string]string{"jwt claims": Warn}, "issuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := tc.fx.run(t)
			got := byName(rs)
			failed := false
			details := ""
			for name, want := range tc.want {
				r, ok := got[name]
				if !ok {
					t.Fatalf("no %q check in %v", name, rs)
				}
				if r.Status != want {
					t.Errorf("%s = %s (%s), want %s", name, r.Status, r.Detail, want)
				}
				if r.Status != Pass && r.Fix == "" {
					t.Errorf("%s: %s without a fix", name, r.Status)
				}
				details += r.Detail + "\n"
				failed = failed || want == Fail
				if strings.Contains(r.Detail, fakeAnthropicKey) || strings.Contains(r.Detail, plainUpstreamKey) {
					t.Errorf("%s detail shows the key", name)
				}
			}
			if !strings.Contains(details, tc.text) {
				t.Errorf("details %q lack %q", details, tc.text)
			}
			// Only the provoked checks change: everything else still passes.
			for _, r := range rs {
				if _, ok := tc.want[r.Name]; !ok && r.Status != Pass {
					t.Errorf("unexpected %s: %s: %s", r.Name, r.Status, r.Detail)
				}
			}
			var buf bytes.Buffer
			if Print(&buf, rs) != failed {
				t.Errorf("Print failed = %v, want %v:\n%s", !failed, failed, buf.String())
			}
		})
	}
}

func TestPrint(t *testing.T) {
	rs := []Result{
		{Name: "a", Status: Pass, Detail: "ok"},
		{Name: "longer name", Status: Warn, Detail: "hmm", Fix: "do this"},
		{Name: "c", Status: Fail, Detail: "bad", Fix: "do that"},
	}
	var buf bytes.Buffer
	if !Print(&buf, rs) {
		t.Fatal("a fail not reported")
	}
	want := "PASS  a            ok\n" +
		"WARN  longer name  hmm\n" +
		"                   fix: do this\n" +
		"FAIL  c            bad\n" +
		"                   fix: do that\n" +
		"doctor: 1 pass, 1 warn, 1 fail\n"
	if buf.String() != want {
		t.Fatalf("Print wrote\n%s\nwant\n%s", buf.String(), want)
	}
}
