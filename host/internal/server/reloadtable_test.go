package server

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files and README.md's reload table")

// TestReloadTableCoversEveryKey: every key of the config resolves to a
// rule of ReloadTable, and every rule names a key or section that exists,
// once. A key added to config.Config without a row fails here.
func TestReloadTableCoversEveryKey(t *testing.T) {
	keys := configKeys()
	if len(keys) < 50 {
		t.Fatalf("only %d config keys found: %q", len(keys), keys)
	}
	for _, k := range keys {
		if _, ok := ruleFor(k); !ok {
			t.Errorf("config key %q has no row in ReloadTable", k)
		}
	}
	seen := map[string]bool{}
	for _, r := range ReloadTable {
		if seen[r.Key] {
			t.Errorf("ReloadTable names %q twice", r.Key)
		}
		seen[r.Key] = true
		found := false
		for _, k := range keys {
			if k == r.Key || strings.HasPrefix(k, r.Key+".") {
				found = true
			}
		}
		if !found {
			t.Errorf("ReloadTable names %q, which is not a config key", r.Key)
		}
	}
}

// TestReloadTableInREADME: README.md prints ReloadTableMarkdown between
// its reload-table markers. Run with -update to rewrite README.md.
func TestReloadTableInREADME(t *testing.T) {
	const path = "../../../README.md"
	const begin, end = "<!-- reload-table: generated from server.ReloadTable; go test ./host/internal/server -run TestReloadTableInREADME -update -->\n", "<!-- end reload-table -->\n"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q markers", begin, end)
	}
	want := ReloadTableMarkdown()
	got := string(readme[i+len(begin) : j])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, readme[:i+len(begin)]...), want...), readme[j:]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's reload table is stale (run with -update):\n got:\n%s\nwant:\n%s", got, want)
}

// TestReloadTableGolden pins the rendered table, so a change to a rule
// shows in review as a change of testdata/reload-table.md.
func TestReloadTableGolden(t *testing.T) {
	const path = "testdata/reload-table.md"
	want := ReloadTableMarkdown()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(golden) != want {
		t.Errorf("reload table differs from %s (run with -update):\n%s", path, want)
	}
}

// TestEveryRestartKeyIsPinned: changing any OnRestart key alone is named
// and reverted; changing any OnReload key alone is applied.
func TestEveryRestartKeyIsPinned(t *testing.T) {
	base := "[upstream]\nbase_url = \"http://127.0.0.1:2\"\n"
	for _, key := range configKeys() {
		r, _ := ruleFor(key)
		if r.Applies == Refused {
			continue
		}
		t.Run(key, func(t *testing.T) {
			running, err := config.Parse([]byte(base), "")
			if err != nil {
				t.Fatal(err)
			}
			next, _ := config.Parse([]byte(base), "")
			f := field(next, key)
			changeValue(t, f)
			changed := reflect.ValueOf(f.Interface())
			got := pinRestartOnly(running, next)
			switch r.Applies {
			case OnRestart:
				if len(got) != 1 || got[0] != key {
					t.Errorf("restart required %q, want [%s]", got, key)
				}
				if !reflect.DeepEqual(field(next, key).Interface(), field(running, key).Interface()) {
					t.Errorf("%s took the new value", key)
				}
			case OnReload:
				if len(got) != 0 {
					t.Errorf("restart required %q, want none", got)
				}
				if !reflect.DeepEqual(field(next, key).Interface(), changed.Interface()) {
					t.Errorf("%s kept the running value", key)
				}
			}
		})
	}
}

// changeValue sets v to a value different from its current one.
func changeValue(t *testing.T, v reflect.Value) {
	t.Helper()
	before := reflect.ValueOf(v.Interface())
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Float64:
		v.SetFloat(v.Float() + 0.5)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("changed-key").Convert(v.Type().Key()), reflect.New(v.Type().Elem()).Elem())
		v.Set(m)
	case reflect.Struct:
		changed := false
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				changeValue(t, v.Field(i))
				changed = true
				break
			}
		}
		if !changed {
			t.Fatalf("cannot change a %s", v.Type())
		}
	default:
		t.Fatalf("cannot change a %s", v.Kind())
	}
	if reflect.DeepEqual(before.Interface(), v.Interface()) {
		t.Fatalf("value of %s did not change", v.Type())
	}
}
