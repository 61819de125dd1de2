package plan

import (
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/wasm"
)

// TestEveryFieldCompiled: each compile step, given a config section with
// every field set, yields options with every field set, so a field added
// to a component's options (or to the section) and not mapped fails here.
func TestEveryFieldCompiled(t *testing.T) {
	cases := []struct {
		name    string
		compile func(c *config.Config) any
		// unset are option fields the section cannot set (filled by the
		// caller, or left at their zero value on purpose).
		unset []string
	}{
		{"anomaly", func(c *config.Config) any { return Anomaly(c.Anomaly) }, nil},
		{"keysource", func(c *config.Config) any { return KeySource(c.Upstream) }, nil},
		{"audit", func(c *config.Config) any { c.Audit.FSync = "250ms"; return Audit(c.Audit) }, nil},
		{"plugin", func(c *config.Config) any {
			c.Plugins[0].Runtime = "native"
			ps, err := Plugin(c, &c.Plugins[0])
			if err != nil {
				t.Fatal(err)
			}
			return ps
		}, nil},
		{"plugin limits", func(c *config.Config) any {
			c.Plugins[0].Isolation = "fresh"
			return PluginLimits(&c.Plugins[0])
		}, nil},
		{"route prompt", func(c *config.Config) any { return RoutePrompt(&c.Routes[0]) }, nil},
		{"upstream", func(c *config.Config) any { return Upstream(c) }, nil},
		{"upstream retry", func(c *config.Config) any { return Upstream(c).Retry }, nil},
		{"limits", func(c *config.Config) any { return limits(t, c) }, nil},
		{"limits store", func(c *config.Config) any { return limits(t, c).Store }, nil},
		{"limits client", func(c *config.Config) any { return limits(t, c).Clients[0] }, nil},
		{"limits budget", func(c *config.Config) any { return limits(t, c).Budgets[0] }, nil},
		{"limits pricing", func(c *config.Config) any { return limits(t, c).Pricing["x1"] }, nil},
		{"auth", func(c *config.Config) any { c.Clients[0].AllowIPs = []string{"10.0.0.0/8"}; return mustAuth(t, c) }, nil},
		{"auth client", func(c *config.Config) any {
			c.Clients[0].AllowIPs = []string{"10.0.0.0/8"}
			return mustAuth(t, c).Clients[0]
		}, nil},
		{"auth key", func(c *config.Config) any {
			c.Clients[0].AllowIPs = []string{"10.0.0.0/8"}
			c.Clients[0].Keys[0].Expires = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			keys := mustAuth(t, c).Clients[0].Keys
			return keys[len(keys)-1]
		}, nil},
		{"jwt", func(c *config.Config) any { return JWT(c.JWT) }, nil},
		{"exchange", func(c *config.Config) any { return Exchange(c) }, nil},
		{"client policy", func(c *config.Config) any { return ClientPolicy(&c.Clients[0]) }, nil},
		{"exchange route", func(c *config.Config) any {
			r := &c.Routes[0]
			r.Format, r.Task = "json", "Do {{input}} with {{var.x1}}."
			rt, err := ExchangeRoute(r)
			if err != nil {
				t.Fatal(err)
			}
			return rt
		}, []string{"Chains"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c config.Config
			fill(reflect.ValueOf(&c).Elem())
			got := reflect.ValueOf(tc.compile(&c))
			for got.Kind() == reflect.Pointer {
				got = got.Elem()
			}
			for i := range got.NumField() {
				f := got.Type().Field(i)
				if !f.IsExported() || contains(tc.unset, f.Name) {
					continue
				}
				if got.Field(i).IsZero() {
					t.Errorf("%s.%s is not compiled from the config", got.Type(), f.Name)
				}
			}
		})
	}
}

// limits compiles c's limits with every rate set to one that parses.
func limits(t *testing.T, c *config.Config) limit.Config {
	t.Helper()
	c.Limits.ClientRate, c.Limits.UserRate, c.Limits.AuthFailRate = "1-S", "2-M", "3-H"
	c.Clients[0].Rate, c.Clients[0].UserRate = "4-D", "5-M"
	lc, err := Limits(c)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// mustAuth compiles c's clients and [jwt] for auth.
func mustAuth(t *testing.T, c *config.Config) auth.Options {
	t.Helper()
	o, err := Auth(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fill sets every settable field under v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x1")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(3 * time.Second))
			return
		}
		v.SetInt(3)
	case reflect.Float64:
		v.SetFloat(2.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf("x1"))
	}
}

// TestPipelineChains: the registry checks the default chains, then each
// client's and each route's own, named as config.toml names them.
func TestPipelineChains(t *testing.T) {
	in, out := []string{"a"}, []string{"b"}
	c := &config.Config{
		Pipeline: config.Chains{Input: []string{"x"}},
		Clients:  []config.Client{{ID: "app", Output: &out}, {ID: "plain"}},
		Routes:   []config.Route{{Name: "sum", Input: &in, Output: &out}},
	}
	spec, err := Pipeline(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range spec.Chains {
		got = append(got, ch.Where+" "+string(ch.Phase))
	}
	want := []string{"pipeline.input input", "pipeline.output output", `clients["app"].output output`, `routes["sum"].input input`, `routes["sum"].output output`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("chains %q, want %q", got, want)
	}
}

// TestTrustedProxies: entries parse as CIDRs (masked) or single
// addresses; a bad entry is refused by its index.
func TestTrustedProxies(t *testing.T) {
	cases := []struct {
		name    string
		entries []string
		want    []string
		err     string
	}{
		{"none", nil, nil, ""},
		{"cidr and address", []string{"10.1.2.3/8", "192.0.2.7", "::ffff:192.0.2.8"}, []string{"10.0.0.0/8", "192.0.2.7/32", "192.0.2.8/32"}, ""},
		{"bad", []string{"10.0.0.0/8", "not-a-cidr"}, nil, `server.trusted_proxies[1]: not a CIDR or address: "not-a-cidr"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &config.Config{Server: config.Server{TrustedProxies: tc.entries}}
			got, err := TrustedProxies(c)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Fatalf("got %q, want %q", s, tc.want)
			}
		})
	}
}

// TestPluginDefaultsAgree: the limits config.toml's defaults compile to
// are wasm's own defaults, so a plugin with no limits of its own runs
// the same whether built from config.toml or from wasm.Limits{}.
func TestPluginDefaultsAgree(t *testing.T) {
	c, err := config.Parse([]byte("[upstream]\nbase_url = \"http://127.0.0.1:1\"\n[[plugins]]\nname = \"p\"\nbuiltin = \"pii-redact\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := PluginLimits(&c.Plugins[0]).WithDefaults()
	if want := (wasm.Limits{}).WithDefaults(); got != want {
		t.Fatalf("config.toml's plugin defaults compile to %+v, wasm's defaults are %+v", got, want)
	}
	def, err := DefaultPluginLimits()
	if err != nil {
		t.Fatal(err)
	}
	if want := PluginLimits(&c.Plugins[0]); def != want {
		t.Fatalf("DefaultPluginLimits %+v, a [[plugins]] entry without limits compiles to %+v", def, want)
	}
}

// TestLimitsRates: rates compile from config.toml's format to counts per
// period, "" to no limit; one that does not parse is refused by its key.
func TestLimitsRates(t *testing.T) {
	cases := []struct {
		name   string
		client string
		want   limit.Rate
		err    string
	}{
		{"none", "", limit.Rate{}, ""},
		{"per minute", "10-M", limit.Rate{Count: 10, Period: time.Minute}, ""},
		{"lowercase day", "7-d", limit.Rate{Count: 7, Period: 24 * time.Hour}, ""},
		{"per second", "1-S", limit.Rate{Count: 1, Period: time.Second}, ""},
		{"bad unit", "10-W", limit.Rate{}, `clients["app"].rate: invalid rate "10-W"`},
		{"allows nothing", "0-M", limit.Rate{}, `clients["app"].rate: invalid rate "0-M"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &config.Config{Clients: []config.Client{{ID: "app", Rate: tc.client}}}
			got, err := Limits(c)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Clients[0].Rate != tc.want {
				t.Fatalf("rate %+v, want %+v", got.Clients[0].Rate, tc.want)
			}
		})
	}
}

// TestLimitsDefaults: the limits config.toml's defaults compile to (the
// memory store with its state file next to the config, 20 failed
// authentications a minute, monthly budgets) come from config alone.
func TestLimitsDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Parse([]byte("[upstream]\nbase_url = \"http://127.0.0.1:1\"\n[[budgets]]\nscope = \"global\"\nusd = 5\n"), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Limits(c)
	if err != nil {
		t.Fatal(err)
	}
	want := limit.Config{
		Store:        limit.Store{Kind: limit.StoreMemory, StateFile: filepath.Join(dir, ".moat-state.db")},
		AuthFailRate: limit.Rate{Count: 20, Period: time.Minute},
		Budgets:      []limit.Budget{{Scope: limit.ScopeGlobal, Period: limit.PeriodMonth, USD: 5}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults compile to\n%+v\nwant\n%+v", got, want)
	}
}

// TestComponentsDoNotImportSchema: the components plan compiles options
// for import neither the TOML schema nor plan, in code or in tests.
func TestComponentsDoNotImportSchema(t *testing.T) {
	const mod = "github.com/moat-gateway/moat/host/internal/"
	for _, pkg := range []string{"anomaly", "audit", "auth", "exchange", "keysource", "limit", "pipeline", "prompt", "streamguard", "upstream", "wasm"} {
		t.Run(pkg, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join("..", pkg, "*.go"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no Go files for %s: %v", pkg, err)
			}
			for _, f := range files {
				af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
				if err != nil {
					t.Fatal(err)
				}
				for _, imp := range af.Imports {
					if p := strings.Trim(imp.Path.Value, `"`); p == mod+"config" || p == mod+"plan" {
						t.Errorf("%s imports %s", f, p)
					}
				}
			}
		})
	}
}

// TestAuthClients: auth gets the config's clients then the local ones, each
// client's key_sha256 before its [[clients.keys]], allow_ips parsed (a bad
// entry refused by client), and no JWT unless [jwt] is enabled.
func TestAuthClients(t *testing.T) {
	exp := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		cfg   config.Config
		local []config.Client
		want  auth.Options
		err   string
	}{
		{"config then local", config.Config{Clients: []config.Client{
			{ID: "app", KeySHA256: "aa", Keys: []config.ClientKey{{SHA256: "bb", Expires: exp}, {SHA256: "cc", Revoked: true}}, AllowIPs: []string{"10.1.2.3/8", "192.0.2.7"}},
		}}, []config.Client{{ID: "local-dev", KeySHA256: "dd"}}, auth.Options{Clients: []auth.Client{
			{ID: "app", Keys: []auth.Key{{SHA256: "aa"}, {SHA256: "bb", Expires: exp}, {SHA256: "cc", Revoked: true}},
				AllowIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}},
			{ID: "local-dev", Keys: []auth.Key{{SHA256: "dd"}}},
		}}, ""},
		{"jwt off", config.Config{JWT: config.JWT{Client: "spa", Algorithms: []string{"HS256"}}}, nil, auth.Options{}, ""},
		{"jwt on", config.Config{JWT: config.JWT{Enabled: true, Client: "spa", Algorithms: []string{"HS256"}, SecretEnv: "S", Leeway: config.Duration{Duration: time.Second}}}, nil,
			auth.Options{JWT: &auth.JWT{Client: "spa", Algorithms: []string{"HS256"}, SecretEnv: "S", Leeway: time.Second}}, ""},
		{"bad allowlist", config.Config{}, []config.Client{{ID: "b", AllowIPs: []string{"10.0.0.0/99"}}}, auth.Options{}, `client "b" allow_ips: `},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Auth(&tc.cfg, tc.local)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want one starting %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
