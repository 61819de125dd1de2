package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBadConfigGolden checks every problem in a broken file is reported at
// once, naming the key.
func TestBadConfigGolden(t *testing.T) {
	_, err := Load("testdata/bad.toml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	got := err.Error() + "\n"
	golden := "testdata/bad.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("problems differ from %s (run with -update):\n%s", golden, got)
	}
	if len(ce.Problems) < 15 {
		t.Errorf("only %d problems reported", len(ce.Problems))
	}
}

func TestSampleConfigIsValid(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "..", "config.toml"))
	if err != nil {
		t.Fatalf("the shipped config.toml does not load: %v", err)
	}
	if c.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("sample listens on %q", c.Server.Listen)
	}
	if len(c.Clients) != 0 {
		t.Errorf("the sample must ship no client key")
	}
}

func TestLiteralKeyRefused(t *testing.T) {
	key := "sk-" + "ant-" + "api03-" + strings.Repeat("x", 40)
	_, err := Parse([]byte("[upstream]\napi_key = \""+key+"\"\n"), "c.toml")
	if err == nil || !strings.Contains(err.Error(), "literal Anthropic key") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), strings.Repeat("x", 20)) {
		t.Fatalf("the error echoes the key: %v", err)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	cases := map[string]string{
		"[server]\nlisten = \"127.0.0.1:1\"\nfoo = 1\n":                                              "server.foo",
		"[[clients]]\nid = \"a\"\nkey_sha256 = \"" + strings.Repeat("a", 64) + "\"\nmodel = \"x\"\n": "clients.model",
		"[limits]\nuser_rate = \"10-M\"\nuser_rates = \"1-S\"\n":                                     "limits.user_rates",
	}
	for in, key := range cases {
		_, err := Parse([]byte(in), "c.toml")
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("%q: err = %v, want unknown key %s", in, err, key)
		}
	}
}

func TestPluginConfigIsFreeForm(t *testing.T) {
	in := `[[plugins]]
name = "d"
builtin = "deny-patterns"
config = { patterns = ["a+"], anything = { nested = true } }
[pipeline]
input = ["d"]
`
	c, err := Parse([]byte(in), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Plugins[0].Runtime != "native" || c.Plugins[0].OnError != "reject" {
		t.Errorf("defaults not applied: %+v", c.Plugins[0])
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/bad.toml", "../../../config.toml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[server]\nlisten = 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "fuzz.toml")
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error is not a problem list: %v", err)
			}
		}
	})
}

func TestAnomalyValidated(t *testing.T) {
	in := "[anomaly]\nenabled = true\nspend_factor = 0.5\nauth_failures = -1\nwebhook = \"ftp://x\"\n"
	_, err := Parse([]byte(in), "c.toml")
	for _, key := range []string{"anomaly.spend_factor", "anomaly.auth_failures", "anomaly.webhook"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("err = %v, want a problem naming %s", err, key)
		}
	}
}

func TestAdminValidated(t *testing.T) {
	cases := []struct {
		name, admin string
		want        string // "" = valid
	}{
		{"plain", "listen = \"127.0.0.1:9090\"\n", ""},
		{"tls pair and hosts", "listen = \"0.0.0.0:9090\"\ntls_cert_file = \"a.crt\"\ntls_key_file = \"a.key\"\nallowed_hosts = [\"moat-admin.internal\"]\nmetrics_auth = true\n", ""},
		{"cert without key", "tls_cert_file = \"a.crt\"\n", "admin.tls_cert_file"},
		{"key without cert", "tls_key_file = \"a.key\"\n", "admin.tls_cert_file"},
		{"host with port", "allowed_hosts = [\"admin.example:9090\"]\n", "admin.allowed_hosts[0]"},
		{"host with scheme", "allowed_hosts = [\"ok.example\", \"https://admin.example\"]\n", "admin.allowed_hosts[1]"},
		{"empty host", "allowed_hosts = [\"\"]\n", "admin.allowed_hosts[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte("[admin]\n"+tc.admin), "/etc/moat/config.toml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Admin.TLSCertFile != "" && cfg.Admin.TLSCertFile != "/etc/moat/a.crt" {
					t.Fatalf("tls_cert_file not resolved against the config's directory: %q", cfg.Admin.TLSCertFile)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a problem naming %s", err, tc.want)
			}
		})
	}
}
