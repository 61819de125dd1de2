package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/metrics"
	"github.com/moat-gateway/moat/host/internal/plan"
)

const testToken = "console-test-token-0123456789"

// xss payloads that must always come out as text.
var xssPayloads = []string{
	`<img src=x onerror=alert(1)>`,
	`"><script>alert(2)</script>`,
	`</td><svg onload=alert(3)>`,
}

const testConfig = `
environment = "test"
[server]
listen = "127.0.0.1:0"
[upstream]
base_url = "https://user:hunter2@upstream.example/v1?sig=topsecret"
api_key_env = "MY_ANTHROPIC_KEY_VAR"
[admin]
listen = "127.0.0.1:0"
token_env = "MY_ADMIN_TOKEN_VAR"
[limits]
client_rate = "100-M"
user_rate = "50-M"
[[clients]]
id = "app"
key_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
trusted = true
user_header = "X-Moat-User"
[[plugins]]
name = "deny"
builtin = "deny-patterns"
config = { patterns = ["FORBIDDEN"], api_token = "plugin-secret-value" }
[pipeline]
input = ["deny"]
[[budgets]]
scope = "global"
period = "day"
usd = 10.0
alerts = [0.5, 0.8]
webhook = "https://hooks.example/services/T000/B000/XXXXSECRETPATH?token=hooksecret"
`

// fixture is a console over real metrics, a real limiter and a real audit
// trail.
type fixture struct {
	c       *Console
	cfg     *config.Config
	metrics *metrics.Metrics
	lim     *limit.Limiter
	audit   string
	reloads atomic.Int32
	srv     *httptest.Server
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("loading test config: %v", err)
	}
	f := &fixture{cfg: cfg, metrics: metrics.New(metrics.Options{Environment: "test"}), audit: filepath.Join(dir, "audit.jsonl")}
	lcfg, err := plan.Limits(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.lim, err = limit.New(context.Background(), lcfg, limit.Options{}); err != nil {
		t.Fatalf("starting limiter: %v", err)
	}
	t.Cleanup(func() { _ = f.lim.Close() })
	opts := Options{
		Token: testToken, Metrics: f.metrics, Limiter: f.lim, AuditPath: f.audit,
		Config:     func() *config.Config { return cfg },
		LastReload: func() ReloadStatus { return ReloadStatus{} },
		Reload: func(context.Context) error {
			f.reloads.Add(1)
			return nil
		},
	}
	if mod != nil {
		mod(&opts)
	}
	f.c = New(opts)
	mux := http.NewServeMux()
	mux.Handle(Prefix, f.c.Handler())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// writeAudit writes records through the real audit logger.
func (f *fixture) writeAudit(t *testing.T, recs ...audit.Record) {
	t.Helper()
	acfg := plan.Audit(f.cfg.Audit)
	acfg.Path = f.audit
	l, err := audit.Open(acfg, audit.Options{Environment: "test"})
	if err != nil {
		t.Fatalf("opening audit: %v", err)
	}
	for i := range recs {
		if err := l.Write(context.Background(), &recs[i]); err != nil {
			t.Fatalf("writing audit: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	return do(t, c, req)
}

// post sends a form; origin "" sends no Origin header.
func (f *fixture) post(t *testing.T, c *http.Client, path, origin string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return do(t, c, req)
}

// login logs c in and returns the page's CSRF token.
func (f *fixture) login(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, _ := f.post(t, c, Prefix+"login", f.srv.URL, url.Values{"token": {testToken}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != Prefix {
		t.Fatalf("login: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := f.get(t, c, Prefix+"config")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the config page:\n%s", body)
	}
	return m[1]
}

func TestLoginRequired(t *testing.T) {
	f := newFixture(t, nil)
	c := client(t)
	for _, p := range []string{"", "clients", "plugins", "audit", "audit/record?request_id=x", "config"} {
		t.Run("page "+p, func(t *testing.T) {
			resp, body := f.get(t, c, Prefix+p)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != Prefix+"login" {
				t.Fatalf("status %d location %q, want 303 to the login form", resp.StatusCode, resp.Header.Get("Location"))
			}
			if strings.Contains(body, "app") && strings.Contains(body, "deny") {
				t.Fatalf("data leaked before login: %s", body)
			}
		})
	}
	for _, p := range []string{"api/overview", "api/usage", "api/plugins", "api/audit"} {
		t.Run(p, func(t *testing.T) {
			resp, body := f.get(t, c, Prefix+p)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "login required") {
				t.Fatalf("status %d body %s, want 401", resp.StatusCode, body)
			}
		})
	}
	for _, p := range []string{"reload", "logout"} {
		t.Run("POST "+p, func(t *testing.T) {
			resp, _ := f.post(t, c, Prefix+p, f.srv.URL, url.Values{"csrf": {"anything"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	// A forged cookie is no session.
	u, _ := url.Parse(f.srv.URL + Prefix)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: randomToken()}})
	if resp, _ := f.get(t, c, Prefix); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("forged cookie: status %d, want 303", resp.StatusCode)
	}
	if f.reloads.Load() != 0 {
		t.Fatalf("reload ran %d times without a session", f.reloads.Load())
	}
}

func TestLoginToken(t *testing.T) {
	tests := []struct {
		name   string
		admin  string
		offer  string
		status int
	}{
		{"right token", testToken, testToken, http.StatusSeeOther},
		{"wrong token", testToken, "wrong", http.StatusUnauthorized},
		{"prefix of the token", testToken, testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"token plus a byte", testToken, testToken + "x", http.StatusUnauthorized},
		{"empty offer", testToken, "", http.StatusUnauthorized},
		{"no admin token configured", "", "", http.StatusServiceUnavailable},
		{"no admin token, any offer", "", "guess", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Token = tt.admin })
			c := client(t)
			resp, body := f.post(t, c, Prefix+"login", f.srv.URL, url.Values{"token": {tt.offer}})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			set := resp.Header.Get("Set-Cookie") != ""
			if set != (tt.status == http.StatusSeeOther) {
				t.Fatalf("Set-Cookie present = %v for status %d", set, resp.StatusCode)
			}
			page, _ := f.get(t, c, Prefix)
			if ok := page.StatusCode == http.StatusOK; ok != (tt.status == http.StatusSeeOther) {
				t.Fatalf("overview status %d after login status %d", page.StatusCode, resp.StatusCode)
			}
		})
	}
}

func TestTokenCompareIsConstantTimeShaped(t *testing.T) {
	// tokenOK hashes both sides, so every comparison is over 32 bytes
	// whatever the lengths; check its truth table.
	for _, tt := range []struct {
		got, want string
		ok        bool
	}{{"a", "a", true}, {"a", "b", false}, {"", "", false}, {"a", "", false}, {strings.Repeat("x", 4096), "x", false}} {
		if tokenOK(tt.got, tt.want) != tt.ok {
			t.Errorf("tokenOK(%q, %q) = %v", tt.got, tt.want, !tt.ok)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, nil)
	c := client(t)
	for i := 0; i < MaxLoginFailures; i++ {
		if resp, _ := f.post(t, c, Prefix+"login", f.srv.URL, url.Values{"token": {"guess"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i, resp.StatusCode)
		}
	}
	// Even the right token is refused for the rest of the minute.
	if resp, _ := f.post(t, c, Prefix+"login", f.srv.URL, url.Values{"token": {testToken}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: status %d, want 429", MaxLoginFailures, resp.StatusCode)
	}
	f.c.now = func() time.Time { return time.Now().Add(time.Minute) }
	if resp, _ := f.post(t, c, Prefix+"login", f.srv.URL, url.Values{"token": {testToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("next minute: status %d, want 303", resp.StatusCode)
	}
}

func findCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			return ck
		}
	}
	t.Fatalf("no %s cookie in %v", CookieName, resp.Header.Values("Set-Cookie"))
	return nil
}

func TestCookieAttributes(t *testing.T) {
	t.Run("plain http", func(t *testing.T) {
		f := newFixture(t, nil)
		resp, _ := f.post(t, client(t), Prefix+"login", f.srv.URL, url.Values{"token": {testToken}})
		ck := findCookie(t, resp)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != Prefix || ck.Secure {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=%s, not Secure over plain HTTP", ck, Prefix)
		}
		if len(ck.Value) < 43 {
			t.Fatalf("session id %q is shorter than 256 bits", ck.Value)
		}
		resp2, _ := f.post(t, client(t), Prefix+"login", f.srv.URL, url.Values{"token": {testToken}})
		if findCookie(t, resp2).Value == ck.Value {
			t.Fatal("two logins got the same session id")
		}
		if strings.Contains(ck.Value, testToken) {
			t.Fatal("the cookie carries the admin token")
		}
	})
	t.Run("https origin", func(t *testing.T) {
		f := newFixture(t, func(o *Options) { o.Origin = "https://moat-admin.example" })
		resp, _ := f.post(t, client(t), Prefix+"login", "https://moat-admin.example", url.Values{"token": {testToken}})
		if ck := findCookie(t, resp); !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie %+v: want Secure behind an https origin", ck)
		}
	})
	t.Run("tls", func(t *testing.T) {
		c := New(Options{Token: testToken})
		srv := httptest.NewTLSServer(c.Handler())
		defer srv.Close()
		hc := srv.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test server
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Prefix+"login", strings.NewReader("token="+testToken))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		resp, _ := do(t, hc, req)
		if ck := findCookie(t, resp); !ck.Secure {
			t.Fatalf("cookie %+v: want Secure over TLS", ck)
		}
	})
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, nil)
	c := client(t)
	tok := f.login(t, c)
	tests := []struct {
		name   string
		origin string
		form   url.Values
		header string
		status int
	}{
		{"no token", f.srv.URL, url.Values{}, "", http.StatusForbidden},
		{"wrong token", f.srv.URL, url.Values{"csrf": {"wrong"}}, "", http.StatusForbidden},
		{"token of another length", f.srv.URL, url.Values{"csrf": {tok + "x"}}, "", http.StatusForbidden},
		{"right token, cross-origin", "https://evil.example", url.Values{"csrf": {tok}}, "", http.StatusForbidden},
		{"right token, null origin", "null", url.Values{"csrf": {tok}}, "", http.StatusForbidden},
		{"right token in the form", f.srv.URL, url.Values{"csrf": {tok}}, "", http.StatusSeeOther},
		{"right token in the header", f.srv.URL, url.Values{}, tok, http.StatusSeeOther},
		{"right token, no Origin (not a browser)", "", url.Values{"csrf": {tok}}, "", http.StatusSeeOther},
	}
	want := int32(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+Prefix+"reload", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.header != "" {
				req.Header.Set(csrfHeader, tt.header)
			}
			resp, body := do(t, c, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusSeeOther {
				want++
			}
			if got := f.reloads.Load(); got != want {
				t.Fatalf("reload ran %d times, want %d", got, want)
			}
		})
	}
	t.Run("cross-site Sec-Fetch-Site", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+Prefix+"reload", strings.NewReader("csrf="+tok))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp, _ := do(t, c, req); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("login from another origin", func(t *testing.T) {
		resp, _ := f.post(t, client(t), Prefix+"login", "https://evil.example", url.Values{"token": {testToken}})
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("status %d, want 403 without a cookie", resp.StatusCode)
		}
	})
	t.Run("logout needs the token", func(t *testing.T) {
		if resp, _ := f.post(t, c, Prefix+"logout", f.srv.URL, url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		if resp, _ := f.get(t, c, Prefix); resp.StatusCode != http.StatusOK {
			t.Fatalf("session ended by a logout without token: status %d", resp.StatusCode)
		}
		resp, _ := f.post(t, c, Prefix+"logout", f.srv.URL, url.Values{"csrf": {tok}})
		if resp.StatusCode != http.StatusSeeOther || findCookie(t, resp).MaxAge >= 0 {
			t.Fatalf("logout: status %d", resp.StatusCode)
		}
		if resp, _ := f.get(t, c, Prefix); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after logout: status %d, want 303", resp.StatusCode)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, nil)
	c := client(t)
	f.login(t, c)
	start := time.Now()
	for _, tt := range []struct {
		name   string
		at     time.Time
		status int
	}{
		{"used within the idle time", start.Add(SessionIdle - time.Minute), http.StatusOK},
		{"idle again but touched", start.Add(2*SessionIdle - 2*time.Minute), http.StatusOK},
		{"idle too long", start.Add(4 * SessionIdle), http.StatusSeeOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.c.now = func() time.Time { return tt.at }
			if resp, _ := f.get(t, c, Prefix+"config"); resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("absolute expiry", func(t *testing.T) {
		f.c.now = time.Now
		f.login(t, c)
		for d := time.Duration(0); d <= SessionMax+SessionIdle; d += SessionIdle / 2 {
			f.c.now = func() time.Time { return start.Add(d) }
			resp, _ := f.get(t, c, Prefix+"config")
			if d > SessionMax+time.Minute && resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("session alive %v after login", d)
			}
			if d < SessionMax-time.Minute && resp.StatusCode != http.StatusOK {
				t.Fatalf("session in use ended %v after login: status %d", d, resp.StatusCode)
			}
		}
	})
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t, nil)
	anon, c := client(t), client(t)
	f.login(t, c)
	paths := []struct {
		name   string
		c      *http.Client
		method string
		path   string
	}{
		{"login form", anon, "GET", "login"},
		{"redirect to login", anon, "GET", ""},
		{"401 json", anon, "GET", "api/overview"},
		{"script", anon, "GET", "static/console.js"},
		{"style", anon, "GET", "static/console.css"},
		{"missing asset", anon, "GET", "static/nope.js"},
		{"unknown page", c, "GET", "nope"},
		{"wrong method", c, "DELETE", "config"},
		{"overview", c, "GET", ""},
		{"clients", c, "GET", "clients"},
		{"plugins", c, "GET", "plugins"},
		{"audit", c, "GET", "audit"},
		{"record", c, "GET", "audit/record?request_id=none"},
		{"config", c, "GET", "config"},
		{"api overview", c, "GET", "api/overview"},
		{"api usage", c, "GET", "api/usage"},
		{"api plugins", c, "GET", "api/plugins"},
		{"api audit", c, "GET", "api/audit"},
		{"api audit bad query", c, "GET", "api/audit?decision=maybe"},
		{"failed login", anon, "POST", "login"},
		{"csrf refusal", c, "POST", "reload"},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			req, _ := http.NewRequest(p.method, f.srv.URL+Prefix+p.path, nil)
			resp, _ := do(t, p.c, req)
			h := resp.Header
			if got := h.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("status %d: CSP %q", resp.StatusCode, got)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
	if !strings.Contains(ContentSecurityPolicy, "default-src 'none'") || strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Fatalf("CSP is not strict: %s", ContentSecurityPolicy)
	}
}

// TestNoInlineCode checks the templates and assets: no inline script,
// style or event handler, and nothing loaded from another origin.
func TestNoInlineCode(t *testing.T) {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]`),                  // inline script body
		regexp.MustCompile(`(?i)<script(?:(?:\s(?:defer|async))*)>`),        // script without src
		regexp.MustCompile(`(?i)<style`),                                    // style element
		regexp.MustCompile(`(?i)\sstyle\s*=`),                               // style attribute
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),                            // event handler attribute
		regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*"(?:https?:)?//`), // another origin
		regexp.MustCompile(`(?i)javascript:`),
	}
	ents, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := templateFS.ReadFile("templates/" + e.Name())
		for _, re := range bad {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: %q matches %s", e.Name(), b[loc[0]:loc[1]], re)
			}
		}
	}
	for _, name := range staticNames() {
		b, _ := staticFS.ReadFile("static/" + name)
		if regexp.MustCompile(`https?://|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Match(b) {
			t.Errorf("static/%s uses an external URL or an HTML sink", name)
		}
	}
	if len(staticNames()) < 2 {
		t.Fatalf("embedded assets: %v", staticNames())
	}
}

func TestEscapesAttackerText(t *testing.T) {
	f := newFixture(t, nil)
	recs := []audit.Record{}
	for i, p := range xssPayloads {
		recs = append(recs, audit.Record{
			RequestID: fmt.Sprintf("req_%d", i), Client: "app", User: p, Endpoint: "/v1/messages", Route: p, Model: "claude-x",
			Status: 400, Decision: audit.DecisionRefuse, DecidedBy: "plugin:deny",
			Plugins: []audit.PluginVerdict{{Name: "deny", Phase: "input", Action: "reject", Reason: "deny-patterns: text matches " + p}},
		})
		// The user also shows on the clients page.
		tk, err := f.lim.Admit(context.Background(), limit.Identity{Client: "app", User: p})
		if err != nil {
			t.Fatal(err)
		}
		tk.Done()
	}
	f.writeAudit(t, recs...)
	c := client(t)
	f.login(t, c)
	pages := []string{"audit", "audit?user=" + url.QueryEscape(xssPayloads[0]), "clients", "api/audit", "api/usage"}
	for i := range xssPayloads {
		pages = append(pages, fmt.Sprintf("audit/record?request_id=req_%d", i))
	}
	for _, p := range pages {
		t.Run(p, func(t *testing.T) {
			resp, body := f.get(t, c, Prefix+p)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := false
			for _, x := range xssPayloads {
				if strings.Contains(body, x) {
					t.Errorf("payload %q appears unescaped", x)
				}
				if strings.Contains(body, strings.ReplaceAll(strings.ReplaceAll(x, "<", `\u003c`), ">", `\u003e`)) ||
					strings.Contains(body, strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(x, "<", "&lt;"), ">", "&gt;"), `"`, "&#34;")) {
					seen = true
				}
			}
			if !seen {
				t.Errorf("no payload shown (escaped) at all:\n%s", body)
			}
		})
	}
}

func TestPagesShowData(t *testing.T) {
	f := newFixture(t, nil)
	f.metrics.Request("/v1/messages", "", "app", 200, 30*time.Millisecond, time.Millisecond)
	f.metrics.Request("/v1/messages", "", "app", 400, 80*time.Millisecond, time.Millisecond)
	f.metrics.PluginCall("deny", "input", "reject", 2*time.Millisecond)
	f.metrics.PluginCall("deny", "input", "allow", time.Millisecond)
	f.metrics.PluginError("deny", "input", "timeout")
	f.metrics.PluginError("deny", "input", "timeout")
	f.metrics.PluginError("deny", "input", "saturated")
	f.metrics.Breaker("deny", "open")
	f.metrics.Usage("app", "claude-x", 10, 20, 0, 0, 0.25)
	f.writeAudit(t, audit.Record{RequestID: "req_one", Client: "app", User: "alice", Status: 200, Decision: audit.DecisionAllow},
		audit.Record{RequestID: "req_two", Client: "app", User: "bob", Status: 502, Decision: audit.DecisionError, DecidedBy: "plugin:deny",
			Plugins: []audit.PluginVerdict{{Name: "deny", Phase: "input", Action: "error", Cause: "trap_stack_overflow"}}})
	c := client(t)
	f.login(t, c)
	for _, tt := range []struct {
		path string
		want []string
		not  []string
	}{
		{"", []string{`id="f-requests">2<`, `id="f-errors">1<`, `$0.2500`, `id="spark-rps"`}, nil},
		{"plugins", []string{"deny", "builtin deny-patterns (native)", `class="v-reject">1<`, `class="v-allow">1<`, "input: <code>deny</code>",
			"open (quarantined)", "timeout 2, saturated 1"}, nil},
		{"clients", []string{"app", "100-M", "Budgets", "<meter", "global", "none yet"}, nil},
		{"audit", []string{"req_one", "req_two", "Hash chain: intact: 2 records"}, nil},
		{"audit?decision=error", []string{"req_two"}, []string{"req_one"}},
		{"audit?user=alice", []string{"req_one"}, []string{"req_two"}},
		{"audit?decision=maybe", []string{"decision must be allow, refuse or error"}, nil},
		{"audit/record?request_id=req_two", []string{"plugin:deny", "bob", "Prev hash", `class="cause">trap_stack_overflow<`}, nil},
		{"audit/record?request_id=req_none", []string{"no record has this request id"}, nil},
		{"config", []string{"MY_ANTHROPIC_KEY_VAR", "MY_ADMIN_TOKEN_VAR", "01234567…", "No reload since start."},
			[]string{"hunter2", "topsecret", "hooksecret", "XXXXSECRETPATH", "plugin-secret-value", "0123456789abcdef0123456789abcdef"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			_, body := f.get(t, c, Prefix+tt.path)
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(body, n) {
					t.Errorf("shows %q", n)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

func TestReloadResultShown(t *testing.T) {
	var failing atomic.Bool
	var last ReloadStatus
	f := newFixture(t, func(o *Options) {
		o.Reload = func(context.Context) error {
			last = ReloadStatus{Time: time.Now(), OK: !failing.Load(), RestartRequired: []string{"server.listen", "admin"}}
			if failing.Load() {
				last.Error = "invalid config: <b>bad</b>"
				return errors.New(last.Error)
			}
			return nil
		}
		o.LastReload = func() ReloadStatus { return last }
	})
	c := client(t)
	tok := f.login(t, c)
	for _, fail := range []bool{false, true} {
		failing.Store(fail)
		resp, _ := f.post(t, c, Prefix+"reload", f.srv.URL, url.Values{"csrf": {tok}})
		loc := resp.Header.Get("Location")
		_, body := f.get(t, c, loc)
		want := []string{"Reloaded.", "ok; these settings changed and apply after a restart: server.listen, admin"}
		if fail {
			want = []string{"failed: invalid config: &lt;b&gt;bad&lt;/b&gt;"}
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Fatalf("fail=%v: page lacks %q:\n%s", fail, w, body)
			}
		}
	}
}

func TestAPIOverviewSeries(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	f.c.now = func() time.Time { return now }
	c := client(t)
	f.login(t, c)
	for i := 0; i < 4; i++ {
		for j := 0; j <= i; j++ {
			f.metrics.Request("/v1/messages", "", "app", 200, 20*time.Millisecond, time.Millisecond)
		}
		now = now.Add(SampleEvery)
		if resp, body := f.get(t, c, Prefix+"api/overview"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	o, err := f.c.overview()
	if err != nil {
		t.Fatal(err)
	}
	if o.Requests != 10 || len(o.Series.RPS) != 3 {
		t.Fatalf("requests %v, series %v", o.Requests, o.Series.RPS)
	}
	// 2, 3 and 4 requests in successive 2s intervals.
	for i, want := range []float64{1, 1.5, 2} {
		if o.Series.RPS[i] != want {
			t.Fatalf("rps series %v, want [1 1.5 2]", o.Series.RPS)
		}
		_ = i
	}
	if o.P99 == nil || *o.P99 <= 0.01 || *o.P99 > 0.025 {
		t.Fatalf("p99 %v, want within the 10-25ms bucket", o.P99)
	}
}

func TestAuditChainBreakShown(t *testing.T) {
	f := newFixture(t, nil)
	f.writeAudit(t, audit.Record{RequestID: "req_a", Client: "app", User: "alice", Status: 200, Decision: audit.DecisionAllow},
		audit.Record{RequestID: "req_b", Client: "app", User: "bob", Status: 200, Decision: audit.DecisionAllow})
	c := client(t)
	f.login(t, c)
	if _, body := f.get(t, c, Prefix+"audit"); !strings.Contains(body, "Hash chain: intact: 2 records") {
		t.Fatalf("intact chain not shown:\n%s", body)
	}
	b, err := os.ReadFile(f.audit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.audit, []byte(strings.Replace(string(b), `"user":"alice"`, `"user":"mallory"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, body := f.get(t, c, Prefix+"audit")
	if !strings.Contains(body, "Hash chain: broken:") || !strings.Contains(body, "edited") {
		t.Fatalf("tampered chain not reported:\n%s", body)
	}
}

func TestAlertsReached(t *testing.T) {
	cfg := &config.Config{Budgets: []config.Budget{
		{Scope: "global", Period: "day", USD: 10, Alerts: []float64{0.5, 0.8}},
		{Scope: "client", ID: "app", Period: "month", Tokens: 1000},
	}}
	tests := []struct {
		name string
		b    limit.BudgetReport
		want string
	}{
		{"below every threshold", limit.BudgetReport{Scope: "global", Period: "day", USDLimit: 10, USDSpent: 4.99}, "none yet"},
		{"first threshold", limit.BudgetReport{Scope: "global", Period: "day", USDLimit: 10, USDSpent: 5}, "50%"},
		{"both", limit.BudgetReport{Scope: "global", Period: "day", USDLimit: 10, USDSpent: 9}, "50%, 80%"},
		{"no alerts configured", limit.BudgetReport{Scope: "client", ID: "app", Period: "month", TokensLimit: 1000, TokensSpent: 999}, "none configured"},
		{"budget not in the config", limit.BudgetReport{Scope: "user", Period: "day"}, "—"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := alertsReached(cfg, tt.b); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAPIAuditBadQuery(t *testing.T) {
	f := newFixture(t, nil)
	c := client(t)
	f.login(t, c)
	resp, body := f.get(t, c, Prefix+"api/audit?decision=maybe")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "decision must be") {
		t.Fatalf("status %d body %s, want 400 naming the problem", resp.StatusCode, body)
	}
}
