package console

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
)

func TestMaskURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://api.anthropic.com", "https://api.anthropic.com"},
		{"https://api.anthropic.com/", "https://api.anthropic.com/"},
		{"https://hooks.example/services/T0/B0/SECRET", "https://hooks.example/services/" + Masked},
		{"https://ntfy.example/mysecrettopic", "https://ntfy.example/" + Masked},
		{"https://h.example/hook?token=abc&b=2", "https://h.example/" + Masked + "?b=" + Masked + "&token=" + Masked},
		{"redis://:pw@127.0.0.1:6379/0", "redis://:" + Masked + "@127.0.0.1:6379/" + Masked},
		{"redis://user:pw@redis.internal:6379", "redis://user:" + Masked + "@redis.internal:6379"},
		{"https://h.example#frag-secret", "https://h.example#" + Masked},
		{"mailto:someone@example.com", Masked},
		{"http://[::1", Masked},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := MaskURL(tt.in); got != tt.want {
				t.Fatalf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

var alnum8 = regexp.MustCompile(`^[A-Za-z0-9]{8,}$`)

// FuzzMaskURL: a secret placed in a URL's password, query value, fragment
// or deep path never survives masking, and nothing panics.
func FuzzMaskURL(f *testing.F) {
	f.Add("https", "hooks.example", "services", "s3cretvalue")
	f.Add("redis", "127.0.0.1:6379", "0", "pässwörd")
	f.Add("http", "[::1]:80", "", "a b&c=d")
	f.Fuzz(func(t *testing.T, scheme, host, seg, secret string) {
		_ = MaskURL(scheme + "://" + host + "/" + seg + "?" + secret)
		// Check secrets that cannot be part of the URL's fixed text.
		if !alnum8.MatchString(secret) {
			return
		}
		for _, u := range []url.URL{
			{Scheme: "https", Host: "h.example", User: url.UserPassword("u", secret)},
			{Scheme: "https", Host: "h.example", RawQuery: url.Values{"k": {secret}}.Encode()},
			{Scheme: "https", Host: "h.example", Path: "/" + secret},
			{Scheme: "https", Host: "h.example", Path: "/a/" + secret},
			{Scheme: "https", Host: "h.example", Fragment: secret},
		} {
			raw := u.String()
			got := MaskURL(raw)
			if strings.Contains(got, secret) {
				t.Fatalf("MaskURL(%q) = %q keeps the secret %q", raw, got, secret)
			}
		}
	})
}

func TestMaskConfigLeavesOriginal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := maskedTOML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "topsecret", "hooksecret", "XXXXSECRETPATH", "plugin-secret-value", cfg.Clients[0].KeySHA256} {
		if strings.Contains(out, secret) {
			t.Errorf("masked config shows %q", secret)
		}
	}
	for _, kept := range []string{"MY_ANTHROPIC_KEY_VAR", "FORBIDDEN", `id = "app"`, "01234567…", "hooks.example"} {
		if !strings.Contains(out, kept) {
			t.Errorf("masked config lacks %q", kept)
		}
	}
	// The running config is not touched.
	if !strings.Contains(cfg.Upstream.BaseURL, "hunter2") || cfg.Plugins[0].Config["api_token"] != "plugin-secret-value" || len(cfg.Clients[0].KeySHA256) != 64 {
		t.Fatal("masking changed the running config")
	}
}

func TestMaskLines(t *testing.T) {
	in := strings.Join([]string{
		`token_env = "MOAT_ADMIN_TOKEN"`,
		`secret_file = "/etc/moat/jwt.key"`,
		`  new_webhook = "https://hooks.example/services/T/B/SECRETPATH?k=v"`,
		`alert_url = "https://h.example/?sig=abc"`,
		`base_url = "https://api.anthropic.com"`,
		`db_password = "hunter2"`,
		`signing_secret = "s3cr3t"`,
		`api_key = "k-123"`,
		`name = "app"`,
		`weird_url = "\x"`,
		`empty_token = ""`,
	}, "\n")
	want := strings.Join([]string{
		`token_env = "MOAT_ADMIN_TOKEN"`,
		`secret_file = "/etc/moat/jwt.key"`,
		`  new_webhook = "https://hooks.example/services/` + Masked + `?k=` + Masked + `"`,
		`alert_url = "https://h.example/?sig=` + Masked + `"`,
		`base_url = "https://api.anthropic.com"`,
		`db_password = "` + Masked + `"`,
		`signing_secret = "` + Masked + `"`,
		`api_key = "` + Masked + `"`,
		`name = "app"`,
		`weird_url = "` + Masked + `"`,
		`empty_token = ""`,
	}, "\n")
	if got := maskLines(in); got != want {
		t.Fatalf("maskLines:\n%s\nwant:\n%s", got, want)
	}
}
