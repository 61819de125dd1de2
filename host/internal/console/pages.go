package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/plan"
)

// Cell is one table cell: text, optionally a link (always a /console/ path)
// or a meter (a bar of Value out of Max). Tables are rendered by the
// templates and re-rendered by console.js from the same JSON, so both show
// the same thing.
type Cell struct {
	Text  string `json:"text"`
	Href  string `json:"href,omitempty"`
	Class string `json:"class,omitempty"`
	Meter *Meter `json:"meter,omitempty"`
}

// Meter is a bar.
type Meter struct {
	Value float64 `json:"value"`
	Max   float64 `json:"max"`
}

// Table is a table the page refreshes by ID.
type Table struct {
	ID    string   `json:"id"`
	Title string   `json:"title"`
	Head  []string `json:"head"`
	Rows  [][]Cell `json:"rows"`
	Empty string   `json:"empty"`
}

// Tables is the JSON of a live-refreshed page.
type Tables struct {
	At     time.Time `json:"at"`
	Tables []Table   `json:"tables"`
}

func text(s string) Cell { return Cell{Text: s} }

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func usd(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 4, 64) }

func msText(v *float64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64) + " ms"
}

func secText(v *float64) string {
	if v == nil {
		return "—"
	}
	return msText(ptr(*v * 1000))
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// view is what every page template gets.
type view struct {
	Page  string
	Title string
	CSRF  string
	// API is the JSON the page refreshes from ("" for none).
	API  string
	Data any
}

var pageNames = []string{"login", "overview", "clients", "plugins", "audit", "record", "config"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{"when": when}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			panic("console: parsing embedded template " + name + ": " + err.Error()) // build-time invariant
		}
		out[name] = t
	}
	return out
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, name+".html", data); err != nil {
		c.log.Error("console: rendering page", "page", name, "err", err)
		http.Error(w, "rendering page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// pageAPI names the JSON endpoint each live page polls.
var pageAPI = map[string]string{"overview": "api/overview", "clients": "api/usage", "plugins": "api/plugins", "audit": "api/audit"}

func (c *Console) renderPage(w http.ResponseWriter, r *http.Request, sess *session, name, title string, data any) {
	v := view{Page: name, Title: title, CSRF: sess.csrf, Data: data}
	if api, ok := pageAPI[name]; ok {
		v.API = Prefix + api
		if name == "audit" && r.URL.RawQuery != "" {
			v.API += "?" + r.URL.Query().Encode()
		}
	}
	c.render(w, http.StatusOK, name, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (c *Console) config() *config.Config {
	if c.opts.Config == nil {
		return nil
	}
	return c.opts.Config()
}

// ---- overview ----

type overviewView struct {
	Overview
	Error  string
	Fields map[string]string
}

// fields formats the overview's numbers, by element id suffix.
func (o Overview) fields() map[string]string {
	return map[string]string{
		"requests":        num(o.Requests),
		"errors":          num(o.Errors),
		"refusals":        num(o.Refusals),
		"upstream-errors": num(o.UpstreamErrors),
		"in-flight":       num(o.InFlight),
		"rps":             strconv.FormatFloat(o.RPS, 'f', 2, 64),
		"errors-per-sec":  strconv.FormatFloat(o.ErrorsPerSec, 'f', 2, 64),
		"p50":             secText(o.P50),
		"p99":             secText(o.P99),
		"p50-all":         secText(o.P50All),
		"p99-all":         secText(o.P99All),
		"spend-today":     usd(o.SpendToday),
		"spend-month":     usd(o.SpendMonth),
		"spend-total":     usd(o.SpendTotal),
		"since":           when(o.Since),
		"at":              when(o.At),
	}
}

// OverviewJSON is the overview's JSON: the data and its formatted fields.
type OverviewJSON struct {
	Overview
	Fields map[string]string `json:"fields"`
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request, sess *session) {
	o, err := c.overview()
	v := overviewView{Overview: o, Fields: o.fields()}
	if err != nil {
		v.Error = err.Error()
	}
	c.renderPage(w, r, sess, "overview", "Overview", v)
}

func (c *Console) overviewData(*http.Request) (any, error) {
	o, err := c.overview()
	if err != nil {
		return nil, err
	}
	return OverviewJSON{Overview: o, Fields: o.fields()}, nil
}

// ---- clients and users ----

func rateCells(r *limit.RateReport) []Cell {
	if r == nil {
		return []Cell{text("no limit"), text("—"), text("—")}
	}
	used := float64(r.Limit - r.Remaining)
	return []Cell{
		text(r.Rate),
		{Text: fmt.Sprintf("%d of %d left", r.Remaining, r.Limit), Meter: &Meter{Value: used, Max: float64(max(r.Limit, 1))}},
		text(when(r.Reset)),
	}
}

// alertsReached lists the configured alert thresholds a budget's spend has
// reached (the limiter fires each once per period).
func alertsReached(cfg *config.Config, b limit.BudgetReport) string {
	if cfg == nil {
		return "—"
	}
	frac := 0.0
	if b.USDLimit > 0 {
		frac = max(frac, b.USDSpent/b.USDLimit)
	}
	if b.TokensLimit > 0 {
		frac = max(frac, float64(b.TokensSpent)/float64(b.TokensLimit))
	}
	for _, cb := range cfg.Budgets {
		if cb.Scope != b.Scope || cb.ID != b.ID || cb.Period != b.Period || cb.USD != b.USDLimit || cb.Tokens != b.TokensLimit {
			continue
		}
		var hit []string
		for _, a := range cb.Alerts {
			if frac >= a {
				hit = append(hit, strconv.FormatFloat(a*100, 'f', -1, 64)+"%")
			}
		}
		if len(cb.Alerts) == 0 {
			return "none configured"
		}
		if len(hit) == 0 {
			return "none yet"
		}
		return strings.Join(hit, ", ")
	}
	return "—"
}

func (c *Console) usageTables(rep limit.Report) Tables {
	cfg := c.config()
	clients := Table{ID: "t-clients", Title: "Clients", Head: []string{"Client", "Rate", "Used", "Resets", "In flight"}, Empty: "No clients configured."}
	for _, cl := range rep.Clients {
		row := append([]Cell{text(cl.ID)}, rateCells(cl.Rate)...)
		inf := num(float64(cl.InFlight))
		if cl.MaxInFlight > 0 {
			inf += " of " + num(float64(cl.MaxInFlight))
		}
		clients.Rows = append(clients.Rows, append(row, text(inf)))
	}
	users := Table{ID: "t-users", Title: "Users (last 24 hours)", Head: []string{"Client", "User", "Rate", "Used", "Resets", "Tokens this minute"}, Empty: "No end users seen."}
	for _, u := range rep.Users {
		row := append([]Cell{text(u.Client), {Text: u.User, Href: Prefix + "audit?user=" + url.QueryEscape(u.User), Class: "user"}}, rateCells(u.Rate)...)
		tok := Cell{Text: num(float64(u.TokensThisMinute))}
		if u.TokensPerMinute > 0 {
			tok = Cell{Text: fmt.Sprintf("%d of %d", u.TokensThisMinute, u.TokensPerMinute), Meter: &Meter{Value: float64(u.TokensThisMinute), Max: float64(u.TokensPerMinute)}}
		}
		users.Rows = append(users.Rows, append(row, tok))
	}
	budgets := Table{ID: "t-budgets", Title: "Budgets (current period)", Head: []string{"Scope", "Subject", "Period", "Spend", "Tokens", "Resets", "Alerts reached"}, Empty: "No budgets configured."}
	for _, b := range rep.Budgets {
		spend := Cell{Text: usd(b.USDSpent) + " spent, " + usd(b.USDReserved) + " reserved, no limit"}
		if b.USDLimit > 0 {
			spend = Cell{Text: usd(b.USDSpent) + " of " + usd(b.USDLimit) + " (" + usd(b.USDReserved) + " reserved)", Meter: &Meter{Value: b.USDSpent + b.USDReserved, Max: b.USDLimit}}
		}
		tok := Cell{Text: fmt.Sprintf("%d spent, no limit", b.TokensSpent)}
		if b.TokensLimit > 0 {
			tok = Cell{Text: fmt.Sprintf("%d of %d", b.TokensSpent, b.TokensLimit), Meter: &Meter{Value: float64(b.TokensSpent + b.TokensReserved), Max: float64(b.TokensLimit)}}
		}
		budgets.Rows = append(budgets.Rows, []Cell{text(b.Scope), text(b.Subject), text(b.Period), spend, tok, text(when(b.ResetsAt)), text(alertsReached(cfg, b))})
	}
	return Tables{At: rep.At, Tables: []Table{clients, users, budgets}}
}

var errNoLimiter = errors.New("the limiter is not available")

// badRequest marks an error in the caller's input (answered 400).
type badRequest struct{ err error }

func (e *badRequest) Error() string { return e.err.Error() }
func (e *badRequest) Unwrap() error { return e.err }

func (c *Console) usage(r *http.Request) (Tables, error) {
	if c.opts.Limiter == nil {
		return Tables{}, errNoLimiter
	}
	rep, err := c.opts.Limiter.Usage(r.Context())
	if err != nil {
		return Tables{}, err
	}
	return c.usageTables(rep), nil
}

type tablesView struct {
	Tables []Table
	Error  string
}

func (c *Console) clientsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	t, err := c.usage(r)
	v := tablesView{Tables: t.Tables}
	if err != nil {
		v.Error = err.Error()
	}
	c.renderPage(w, r, sess, "clients", "Clients and users", v)
}

func (c *Console) usageData(r *http.Request) (any, error) { return c.usage(r) }

// ---- plugins ----

func pluginTable(rows []PluginRow) Table {
	t := Table{ID: "t-plugins", Title: "Plugins", Head: []string{"Plugin", "Kind", "Load time", "Calls", "Allow", "Modify", "Reject", "Error", "Other", "p50", "p99", "Breaker", "Failures by cause"}, Empty: "No plugins."}
	for _, p := range rows {
		row := []Cell{{Text: p.Name, Class: "name"}, text(p.Kind), text(msText(p.LoadMS)), {Text: num(p.Calls), Class: "calls"}}
		for _, v := range append(mainVerdicts, "other") {
			row = append(row, Cell{Text: num(p.Verdict[v]), Class: "v-" + v})
		}
		brk := Cell{Text: p.Breaker, Class: "breaker"}
		switch p.Breaker {
		case "":
			brk.Text = "-"
		case "open":
			brk.Text, brk.Class = "open (quarantined)", "breaker bad"
		}
		t.Rows = append(t.Rows, append(row, text(msText(p.P50MS)), text(msText(p.P99MS)), brk, text(causesText(p.Causes))))
	}
	return t
}

// causesText lists failure counts by cause, most frequent first:
// "timeout 12, saturated 3"; "-" for none.
func causesText(causes map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var list []kv
	for k, v := range causes {
		if v > 0 {
			list = append(list, kv{k, v})
		}
	}
	if len(list) == 0 {
		return "-"
	}
	slices.SortFunc(list, func(a, b kv) int {
		if a.v != b.v {
			return cmp.Compare(b.v, a.v)
		}
		return strings.Compare(a.k, b.k)
	})
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = e.k + " " + num(e.v)
	}
	return strings.Join(parts, ", ")
}

// Chain is one configured chain, in order.
type Chain struct {
	Where   string
	Input   []string
	Output  []string
	Default bool
}

func chains(cfg *config.Config) []Chain {
	if cfg == nil {
		return nil
	}
	out := []Chain{{Where: "default [pipeline]", Input: cfg.Pipeline.Input, Output: cfg.Pipeline.Output, Default: true}}
	for i := range cfg.Clients {
		cl := &cfg.Clients[i]
		if cl.Input != nil || cl.Output != nil {
			out = append(out, Chain{Where: "client " + cl.ID, Input: cl.InputChain(cfg.Pipeline.Input), Output: cl.OutputChain(cfg.Pipeline.Output)})
		}
	}
	for _, r := range cfg.Routes {
		if r.Input != nil || r.Output != nil {
			ch := Chain{Where: "route " + r.Name, Input: cfg.Pipeline.Input, Output: cfg.Pipeline.Output}
			if r.Input != nil {
				ch.Input = *r.Input
			}
			if r.Output != nil {
				ch.Output = *r.Output
			}
			out = append(out, ch)
		}
	}
	return out
}

type pluginsView struct {
	Tables []Table
	Chains []Chain
	Error  string
}

func (c *Console) pluginsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	rows, err := c.pluginRows()
	v := pluginsView{Tables: []Table{pluginTable(rows)}, Chains: chains(c.config())}
	if err != nil {
		v.Error = err.Error()
	}
	c.renderPage(w, r, sess, "plugins", "Plugins", v)
}

func (c *Console) pluginsData(*http.Request) (any, error) {
	rows, err := c.pluginRows()
	if err != nil {
		return nil, err
	}
	return Tables{At: c.now().UTC(), Tables: []Table{pluginTable(rows)}}, nil
}

// ---- audit ----

func recordHref(r *audit.Record) string {
	return Prefix + "audit/record?request_id=" + url.QueryEscape(r.RequestID)
}

func auditTable(recs []audit.Record) Table {
	t := Table{ID: "t-audit", Title: "Records (newest first)", Head: []string{"Time", "Request", "Client", "User", "Endpoint", "Model", "Status", "Decision", "Decided by", "Cost"}, Empty: "No matching records."}
	for i := range recs {
		r := &recs[i]
		ep := r.Endpoint
		if r.Route != "" {
			ep += " (" + r.Route + ")"
		}
		t.Rows = append(t.Rows, []Cell{
			text(when(r.Time)), {Text: r.RequestID, Href: recordHref(r), Class: "rid"}, text(r.Client), {Text: r.User, Class: "user"},
			text(ep), text(r.Model), text(strconv.Itoa(r.Status)), {Text: r.Decision, Class: "d-" + r.Decision}, {Text: r.DecidedBy, Class: "by"}, text(usd(r.CostUSD)),
		})
	}
	return t
}

func (c *Console) search(v url.Values) ([]audit.Record, audit.Query, error) {
	q, err := parseAuditQuery(v)
	if err != nil {
		return nil, q, &badRequest{err}
	}
	if c.opts.AuditPath == "" {
		return nil, q, errors.New("the audit trail is not configured")
	}
	recs, err := audit.Search(c.opts.AuditPath, q)
	return recs, q, err
}

// chainStatus is the audit chain's verification.
type chainStatus struct {
	OK      bool
	Records int
	Files   int
	Text    string
}

func (c *Console) verify() chainStatus {
	if c.opts.AuditPath == "" {
		return chainStatus{Text: "the audit trail is not configured"}
	}
	files, err := audit.Files(c.opts.AuditPath)
	if err != nil {
		return chainStatus{Text: err.Error()}
	}
	if len(files) == 0 {
		return chainStatus{OK: true, Text: "no audit file yet"}
	}
	cfg := c.config()
	if cfg == nil {
		return chainStatus{Text: "no running config to read the chain key from"}
	}
	rep, err := audit.VerifyTrail(context.Background(), plan.Audit(cfg.Audit), audit.TrailOptions{Files: files})
	st := chainStatus{OK: err == nil && rep.OK(), Records: rep.Records, Files: len(files)}
	switch {
	case rep.Problem != nil:
		st.Text = "broken: " + rep.Problem.String()
	case err != nil:
		st.Text = err.Error()
	case rep.Checkpoint == nil:
		st.Text = fmt.Sprintf("intact: %d records in %d file(s), keyed; no checkpoint yet", rep.Records, len(files))
	default:
		st.Text = fmt.Sprintf("intact: %d records in %d file(s), keyed; checkpoint at seq %d", rep.Records, len(files), rep.Checkpoint.Seq)
	}
	return st
}

type auditView struct {
	Tables []Table
	Form   url.Values
	Error  string
	Chain  chainStatus
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, sess *session) {
	recs, _, err := c.search(r.URL.Query())
	v := auditView{Tables: []Table{auditTable(recs)}, Form: r.URL.Query(), Chain: c.verify()}
	if err != nil {
		v.Error = err.Error()
	}
	c.renderPage(w, r, sess, "audit", "Audit", v)
}

func (c *Console) auditData(r *http.Request) (any, error) {
	recs, _, err := c.search(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return Tables{At: c.now().UTC(), Tables: []Table{auditTable(recs)}}, nil
}

// field is one line of a record's detail.
type field struct{ Name, Value string }

func recordFields(r *audit.Record) []field {
	f := []field{
		{"Time", r.Time.UTC().Format(time.RFC3339Nano)}, {"Request id", r.RequestID}, {"Environment", r.Environment},
		{"Client", r.Client}, {"User", r.User}, {"Source IP", r.SourceIP}, {"Endpoint", r.Endpoint}, {"Route", r.Route},
		{"Model", r.Model}, {"Stream", strconv.FormatBool(r.Stream)}, {"Status", strconv.Itoa(r.Status)},
		{"Decision", r.Decision}, {"Decided by", r.DecidedBy}, {"Error", r.Error},
		{"Input tokens", strconv.FormatInt(r.InputTokens, 10)}, {"Output tokens", strconv.FormatInt(r.OutputTokens, 10)},
		{"Cache read tokens", strconv.FormatInt(r.CacheReadTokens, 10)}, {"Cache write tokens", strconv.FormatInt(r.CacheWriteTokens, 10)},
		{"Cost", usd(r.CostUSD)}, {"Latency", r.Latency.String()}, {"Gateway latency", r.GatewayLatency.String()},
		{"Upstream request id", r.UpstreamRequestID}, {"Content mode", r.ContentMode},
		{"Input HMAC", r.InputHMAC}, {"Output HMAC", r.OutputHMAC},
		{"Seq", strconv.FormatUint(r.Seq, 10)}, {"Prev hash", r.PrevHash}, {"Hash", r.Hash},
	}
	out := f[:0]
	for _, x := range f {
		if x.Value != "" {
			out = append(out, x)
		}
	}
	return out
}

type recordView struct {
	RequestID string
	Records   []recordDetail
	Error     string
}

type recordDetail struct {
	Fields        []field
	Plugins       []audit.PluginVerdict
	InputContent  string
	OutputContent string
}

func (c *Console) recordPage(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.URL.Query().Get("request_id")
	v := recordView{RequestID: id}
	if id == "" {
		v.Error = "no request id given"
	} else {
		recs, _, err := c.search(url.Values{"request_id": {id}, "limit": {"10"}})
		switch {
		case err != nil:
			v.Error = err.Error()
		case len(recs) == 0:
			v.Error = "no record has this request id"
		}
		for i := range recs {
			rec := &recs[i]
			v.Records = append(v.Records, recordDetail{Fields: recordFields(rec), Plugins: rec.Plugins, InputContent: rec.InputContent, OutputContent: rec.OutputContent})
		}
	}
	c.renderPage(w, r, sess, "record", "Audit record", v)
}

// ---- config ----

type configView struct {
	TOML   string
	Error  string
	Reload ReloadStatus
	Has    bool
	Notice string
	Secret []field
}

// envNames lists the environment variables the config reads, by name only.
func envNames(cfg *config.Config) []field {
	var out []field
	add := func(where, name string) {
		if name != "" {
			out = append(out, field{where, name})
		}
	}
	add("upstream.api_key_env", cfg.Upstream.APIKeyEnv)
	add("limits.redis_url_env", cfg.Limits.RedisURLEnv)
	add("admin.token_env", cfg.Admin.TokenEnv)
	add("audit.hmac_key_env", cfg.Audit.HMACKeyEnv)
	add("jwt.secret_env", cfg.JWT.SecretEnv)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Console) configPage(w http.ResponseWriter, r *http.Request, sess *session) {
	v := configView{}
	if cfg := c.config(); cfg == nil {
		v.Error = "the running config is not available"
	} else {
		v.Secret = envNames(cfg)
		var err error
		if v.TOML, err = maskedTOML(cfg); err != nil {
			v.Error = err.Error()
		}
	}
	if c.opts.LastReload != nil {
		v.Reload = c.opts.LastReload()
		v.Has = !v.Reload.Time.IsZero()
	}
	switch r.URL.Query().Get("reloaded") {
	case "ok":
		v.Notice = "Reloaded."
	case "failed":
		v.Notice = "Reload failed; the previous config keeps running."
	}
	c.renderPage(w, r, sess, "config", "Config", v)
}

func (c *Console) reload(w http.ResponseWriter, r *http.Request, _ *session) {
	if c.opts.Reload == nil {
		http.Error(w, "reload is not available", http.StatusServiceUnavailable)
		return
	}
	res := "ok"
	if err := c.opts.Reload(r.Context()); err != nil {
		c.log.Warn("console: reload failed", "err", err)
		res = "failed"
	} else {
		c.log.Info("console: config reloaded")
	}
	http.Redirect(w, r, Prefix+"config?reloaded="+res, http.StatusSeeOther)
}

// staticNames lists the embedded assets (for tests).
func staticNames() []string {
	var out []string
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, path.Base(p))
		}
		return nil
	})
	return out
}
