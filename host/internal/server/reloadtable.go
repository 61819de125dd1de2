package server

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/moat-gateway/moat/host/internal/config"
)

// Applies says when a change to a setting takes effect.
type Applies int

const (
	// OnReload: the reloaded state uses the file's value.
	OnReload Applies = iota
	// OnRestart: built once at start; a reload keeps the running value and
	// names the setting in its answer (restart_required) and its log.
	OnRestart
	// Refused: a reload that changes it is refused as a whole
	// (limit.Reconfigure); the running config stays.
	Refused
)

// ReloadRule is one row of ReloadTable: a section ("sandbox", "clients")
// or one key of a section ("server.listen"), the top-level "environment",
// and when a change to it applies. A key's own rule overrides its
// section's.
type ReloadRule struct {
	Key     string
	Applies Applies
	// Note, when set, says why (printed in README).
	Note string
}

// ReloadTable is the one table of what a reload applies: every key of the
// config resolves to exactly one rule (TestReloadTableCoversEveryKey).
// Reload pins the OnRestart keys (pinRestartOnly); README.md prints the
// table (ReloadTableMarkdown, TestReloadTableInREADME).
var ReloadTable = []ReloadRule{
	{"environment", OnRestart, "logged and audited from start"},
	{"server", OnReload, ""},
	{"server.listen", OnRestart, "the listener is bound at start"},
	{"server.read_header_timeout", OnRestart, "the http.Server is built at start"},
	{"server.read_timeout", OnRestart, ""},
	{"server.idle_timeout", OnRestart, ""},
	{"upstream", OnReload, "a new upstream client per reload"},
	{"upstream.api_key_env", OnRestart, "the key source is opened at start; the file's content is re-read on change and on reload"},
	{"upstream.api_key_file", OnRestart, ""},
	{"retry", OnReload, ""},
	{"clients", OnReload, ""},
	{"pipeline", OnReload, ""},
	{"plugins", OnReload, ""},
	{"routes", OnReload, ""},
	{"jwt", OnReload, ""},
	{"limits", OnReload, ""},
	{"limits.store", Refused, "the store is opened at start"},
	{"limits.redis_url", Refused, ""},
	{"limits.redis_url_env", Refused, ""},
	{"limits.state_path", Refused, ""},
	{"budgets", OnReload, ""},
	{"pricing", OnReload, ""},
	{"sandbox", OnRestart, "the plugin runtime is built at start"},
	{"admin", OnRestart, "the admin listener is built at start"},
	{"anomaly", OnRestart, "the detector is built at start"},
	{"audit", OnRestart, "the audit log is opened at start"},
	{"audit.fail_open", OnReload, "read per request"},
	{"audit.unauthenticated_rate", OnReload, ""},
}

// configKeys returns every key of config.Config a reload compares: each
// top-level key, and for a top-level table (a struct) each of its keys as
// "section.key", in the struct's order. Arrays of tables and maps are one
// key each.
func configKeys() []string {
	var keys []string
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		if f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeFor[config.Duration]() {
			keys = append(keys, name)
			continue
		}
		for j := range f.Type.NumField() {
			if sub := tomlName(f.Type.Field(j)); sub != "" {
				keys = append(keys, name+"."+sub)
			}
		}
	}
	return keys
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// ruleFor returns the rule of a key: its own, else its section's.
func ruleFor(key string) (ReloadRule, bool) {
	section, _, _ := strings.Cut(key, ".")
	var found ReloadRule
	ok := false
	for _, r := range ReloadTable {
		if r.Key == key {
			return r, true
		}
		if r.Key == section {
			found, ok = r, true
		}
	}
	return found, ok
}

// field returns the field of c named by key ("server.listen").
func field(c *config.Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for part := range strings.SplitSeq(key, ".") {
		t := v.Type()
		next := reflect.Value{}
		for i := range t.NumField() {
			if tomlName(t.Field(i)) == part {
				next = v.Field(i)
				break
			}
		}
		if !next.IsValid() {
			panic(fmt.Sprintf("reload table: no config key %q", key))
		}
		v = next
	}
	return v
}

// pinRestartOnly keeps the running value of every OnRestart key in next,
// so that the reloaded state describes what runs, and returns the keys
// whose new value waits for a restart.
func pinRestartOnly(running, next *config.Config) []string {
	var changed []string
	for _, key := range configKeys() {
		if r, _ := ruleFor(key); r.Applies != OnRestart {
			continue
		}
		have, want := field(running, key), field(next, key)
		if !reflect.DeepEqual(have.Interface(), want.Interface()) {
			changed = append(changed, key)
		}
		want.Set(have)
	}
	return changed
}

// ReloadTableMarkdown renders ReloadTable as README's table: one row per
// section, its keys sorted by when a change applies.
func ReloadTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| section | reloads | needs a restart (a reload keeps the running value) | a reload changing it is refused | why |\n|---|---|---|---|---|\n")
	type row struct {
		cols  [3][]string
		n     int
		notes []string
	}
	var order []string
	rows := map[string]*row{}
	for _, key := range configKeys() {
		section, sub, _ := strings.Cut(key, ".")
		rw := rows[section]
		if rw == nil {
			rw = &row{}
			rows[section] = rw
			order = append(order, section)
		}
		r, _ := ruleFor(key)
		name := "`" + sub + "`"
		if sub == "" {
			name = "all"
		}
		rw.cols[r.Applies] = append(rw.cols[r.Applies], name)
		rw.n++
		if r.Note != "" && !contains(rw.notes, r.Note) {
			rw.notes = append(rw.notes, r.Note)
		}
	}
	for _, section := range order {
		rw := rows[section]
		def, _ := ruleFor(section)
		var cells [3]string
		for i, keys := range rw.cols {
			switch {
			case len(keys) == 0:
			case Applies(i) != def.Applies || keys[0] == "all":
				cells[i] = strings.Join(keys, ", ")
			case len(keys) == rw.n:
				cells[i] = "all"
			default:
				cells[i] = "the rest"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", sectionTitle(section), cells[0], cells[1], cells[2], strings.Join(rw.notes, "; "))
	}
	return b.String()
}

// sectionTitle writes a section as TOML does: [table], [[array]], or a
// top-level key as is.
func sectionTitle(name string) string {
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if tomlName(f) != name {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			return "[[" + name + "]]"
		case f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Map:
			return "[" + name + "]"
		}
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
