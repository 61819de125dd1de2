package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/moat-gateway/moat/host/internal/loopback"
)

// chromiumPath is Debian's Chromium, installed by scripts/chromium.sh.
const chromiumPath = "/usr/bin/chromium"

// Payloads an attacker controls: an end-user id a trusted client names
// (X-Moat-User) and a deny rule's name that ends up in the plugin's reason.
// Each sets a global if it ever runs as script.
const (
	userPayload  = `<img src=x onerror="window.__xss='user'">`
	user2Payload = `"><script>window.__xss='user2'</script>`
	rulePayload  = `<svg onload="window.__xss='rule'">`
)

// guardScript runs before any page script: it traps alert and records CSP
// violations, so the test sees any script a payload managed to run.
const guardScript = `
window.__alerts = [];
window.alert = function (m) { window.__alerts.push(String(m)); };
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });
`

// browserEvents collects what the page did behind the test's back.
type browserEvents struct {
	mu         sync.Mutex
	dialogs    []string
	exceptions []string
	consoleErr []string
	requests   []string
}

func (b *browserEvents) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *page.EventJavascriptDialogOpening:
		b.dialogs = append(b.dialogs, e.Message)
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		b.exceptions = append(b.exceptions, msg)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			b.consoleErr = append(b.consoleErr, e.Entry.Text+" "+e.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, e.Request.URL)
	}
}

func (b *browserEvents) check(t *testing.T, origin string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		t.Errorf("JavaScript dialogs opened: %q", b.dialogs)
	}
	if len(b.exceptions) > 0 {
		t.Errorf("uncaught JavaScript exceptions: %q", b.exceptions)
	}
	// The one expected error is the 401 of the wrong-token login.
	var errs []string
	for _, e := range b.consoleErr {
		if !(strings.Contains(e, "status of 401") && strings.HasSuffix(e, origin+"/console/login")) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 || len(b.consoleErr) != 1 {
		t.Errorf("browser console errors (CSP violations, failed loads), want only the wrong login's 401: %q", b.consoleErr)
	}
	if len(b.requests) < 5 {
		t.Errorf("only %d requests seen: %q", len(b.requests), b.requests)
	}
	for _, u := range b.requests {
		if !strings.HasPrefix(u, origin+"/console/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the console requested %q, outside %s/console/", u, origin)
		}
	}
}

// artifactDir is test-artifacts/console at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "test-artifacts", "console")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("%s is missing (%v): run `bash scripts/chromium.sh` to install Debian's chromium", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// run is chromedp.Run with a per-step timeout and a test failure on error.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		t.Fatalf("%s: %v\nthe browser is at %s showing:\n%s", what, err, loc, body)
	}
	return v
}

func TestConsoleInBrowser(t *testing.T) {
	needChromium(t)
	m := startMoat(t,
		"trusted = true\nuser_header = \"X-Moat-User\"",
		fmt.Sprintf(`
[[plugins]]
name = "deny"
builtin = "deny-patterns"
config = { patterns = [{ name = %q, pattern = "FORBIDDEN-[0-9]+" }] }

[pipeline]
input = ["deny"]
`, rulePayload))
	shots := artifactDir(t)

	ev := &browserEvents{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(ev.listen))
	defer cancel()
	// The first Run starts the browser; it must not carry a timeout.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: guardScript}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	shot := func(name string) {
		t.Helper()
		b := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// clean checks that nothing a payload carried ever ran or became markup.
	clean := func(where string) {
		t.Helper()
		got := run(t, ctx, "checking "+where, chromedp.Evaluate[string](`JSON.stringify({
			xss: window.__xss === undefined ? null : String(window.__xss),
			alerts: window.__alerts, csp: window.__csp,
			injected: document.querySelectorAll('img[src="x"], svg[onload], main script, [onerror]').length,
			guard: typeof window.__alerts
		})`))
		if got != `{"xss":null,"alerts":[],"csp":[],"injected":0,"guard":"object"}` {
			t.Fatalf("%s: a payload ran or became markup: %s", where, got)
		}
	}
	textOf := func(sel string) string {
		t.Helper()
		return run(t, ctx, "reading "+sel, chromedp.TextContent(chromedp.CSS(sel)))
	}
	waitFor := func(what, expr string) {
		t.Helper()
		run(t, ctx, "waiting for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(9*time.Second)))
	}

	// Not logged in: the console sends the browser to the login form.
	run(t, ctx, "opening the console", chromedp.Navigate(m.admin+"/console/"))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != m.admin+"/console/login" {
		t.Fatalf("not logged in, the console shows %s", loc)
	}
	run(t, ctx, "wrong token", chromedp.Steps(chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login"))))
	run(t, ctx, "the refusal", chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if got := textOf("#login-error"); got != "Wrong token." {
		t.Fatalf("wrong token: %q", got)
	}
	shot("01-login-refused")
	run(t, ctx, "logging in", chromedp.Steps(chromedp.SendKeys(chromedp.CSS("#token"), m.adminTok), chromedp.Click(chromedp.CSS("#login"))))
	run(t, ctx, "overview", chromedp.WaitVisible(chromedp.CSS("#f-requests")))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != m.admin+"/console/" {
		t.Fatalf("after login the browser is at %s", loc)
	}
	// The session cookie is HttpOnly: page script cannot read it.
	if c := run(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); c != "" {
		t.Fatalf("page script can read cookies: %q", c)
	}
	clean("overview")

	// Audit page, open before the traffic: records must appear without a
	// reload. The marker would vanish on a reload.
	run(t, ctx, "audit page", chromedp.Navigate(m.admin+"/console/audit"))
	run(t, ctx, "audit table", chromedp.WaitVisible(chromedp.CSS("#t-audit")))
	run(t, ctx, "marking the page", chromedp.Evaluate[chromedp.Void](`window.__marker = 'same-page'`))
	st, okID := m.message("hello there", map[string]string{"X-Moat-User": userPayload})
	if st != http.StatusOK || okID == "" {
		t.Fatalf("allowed call: status %d id %q\n%s", st, okID, m.logs.String())
	}
	st, denyID := m.message("please leak FORBIDDEN-42", map[string]string{"X-Moat-User": user2Payload})
	if st == http.StatusOK || denyID == "" {
		t.Fatalf("denied call: status %d id %q", st, denyID)
	}
	waitFor("both records in the live table", fmt.Sprintf(
		`(function(){var ids=[...document.querySelectorAll('#t-audit td.rid')].map(function(e){return e.textContent});return ids.includes(%q)&&ids.includes(%q)})()`, okID, denyID))
	if mk := run(t, ctx, "marker", chromedp.Evaluate[string](`String(window.__marker)`)); mk != "same-page" {
		t.Fatalf("the page reloaded instead of refreshing live (marker %q)", mk)
	}
	users := run(t, ctx, "user cells", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#t-audit td.user')].map(function(e){return e.textContent})`))
	if strings.Join(users, "\n") != user2Payload+"\n"+userPayload {
		t.Fatalf("user cells %q, want the payloads as text", users)
	}
	if by := textOf("#t-audit tbody tr:first-child td.by"); by != "plugin:deny" {
		t.Fatalf("newest record decided by %q, want plugin:deny", by)
	}
	if cs := textOf("#chain-status"); !strings.Contains(cs, "intact") {
		t.Fatalf("chain status %q", cs)
	}
	clean("audit")
	shot("02-audit-live")

	// The denied record in full.
	run(t, ctx, "opening the record", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#t-audit a[href$=%q]`, denyID))))
	run(t, ctx, "record page", chromedp.WaitVisible(chromedp.CSS("#t-verdicts")))
	if r := textOf("#t-verdicts td.reason"); r != "deny-patterns: text matches "+rulePayload {
		t.Fatalf("plugin reason %q, want the rule name as text", r)
	}
	if body := textOf("main"); !strings.Contains(body, user2Payload) || !strings.Contains(body, denyID) || strings.Contains(body, "FORBIDDEN-42") {
		t.Fatalf("record page: want the user payload and id, never the content:\n%s", body)
	}
	clean("record")
	shot("03-record")

	// Plugins: the rejection is counted, and a new one shows up live.
	run(t, ctx, "plugins page", chromedp.Navigate(m.admin+"/console/plugins"))
	run(t, ctx, "plugin table", chromedp.WaitVisible(chromedp.CSS("#t-plugins")))
	if n := textOf("#t-plugins td.v-reject"); n != "1" {
		t.Fatalf("deny rejections %q, want 1", n)
	}
	if st, _ := m.message("FORBIDDEN-7 again", nil); st == http.StatusOK {
		t.Fatal("second denied call passed")
	}
	waitFor("the second rejection, live", `document.querySelector('#t-plugins td.v-reject').textContent === '2'`)
	if a := textOf("#t-plugins td.v-allow"); a != "1" {
		t.Fatalf("deny allows %q, want 1", a)
	}
	clean("plugins")
	shot("04-plugins")

	// Clients and users: the end user named by the trusted client.
	run(t, ctx, "clients page", chromedp.Navigate(m.admin+"/console/clients"))
	run(t, ctx, "users table", chromedp.WaitVisible(chromedp.CSS("#t-users")))
	if u := textOf("#t-users"); !strings.Contains(u, userPayload) || !strings.Contains(u, user2Payload) {
		t.Fatalf("users table lacks the user ids as text: %q", u)
	}
	clean("clients")
	shot("05-clients")

	// Overview: live counters and sparklines.
	run(t, ctx, "overview", chromedp.Navigate(m.admin+"/console/"))
	waitFor("three requests counted", `document.getElementById('f-requests').textContent === '3'`)
	m.message("one more", nil)
	waitFor("the fourth request, live", `document.getElementById('f-requests').textContent === '4'`)
	waitFor("a sparkline", `document.querySelector('#spark-rps polyline').getAttribute('points').split(' ').length >= 2`)
	clean("overview")
	shot("06-overview")

	// Config: masked, and the reload button (a CSRF-protected POST) works.
	run(t, ctx, "config page", chromedp.Navigate(m.admin+"/console/config"))
	cfgText := textOf("#config")
	if strings.Contains(cfgText, m.adminTok) || !strings.Contains(cfgText, loopback.AdminTokenEnv) {
		t.Fatalf("config page: token shown or env name missing:\n%s", cfgText)
	}
	run(t, ctx, "reload", chromedp.Click(chromedp.CSS("#reload")))
	run(t, ctx, "the reload result", chromedp.WaitVisible(chromedp.CSS("#notice")))
	if n := textOf("#notice"); n != "Reloaded." {
		t.Fatalf("reload notice %q", n)
	}
	if s := textOf("#reload-status"); !strings.Contains(s, "ok") {
		t.Fatalf("reload status %q", s)
	}
	clean("config")
	shot("07-config")

	// Logout ends the session.
	run(t, ctx, "logout", chromedp.Click(chromedp.CSS("form.logout button")))
	run(t, ctx, "login form", chromedp.WaitVisible(chromedp.CSS("#token")))
	run(t, ctx, "audit after logout", chromedp.Navigate(m.admin+"/console/audit"))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != m.admin+"/console/login" {
		t.Fatalf("after logout the console shows %s", loc)
	}
	ev.check(t, m.admin)
}
