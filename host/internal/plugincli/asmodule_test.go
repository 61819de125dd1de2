package plugincli_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

func TestModulesSpeakABIv2(t *testing.T) {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	type fn struct{ params, results []api.ValueType }
	want := map[string]fn{
		"moat_abi_v2": {nil, nil},
		"moat_alloc":  {[]api.ValueType{i32}, []api.ValueType{i32}},
		"moat_input":  {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
		"moat_output": {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
		"moat_phases": {nil, []api.ValueType{i32}},
		"_initialize": {nil, nil},
	}
	tests := []struct {
		path    string
		imports []string
	}{
		{"example/build/example.wasm", []string{"env.abort"}},
		{"build/echo.wasm", []string{"env.abort", "moat.log"}},
		{"build/phrases.wasm", []string{"env.abort"}},
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			cm, err := rt.CompileModule(ctx, loadModule(t, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			var imports []string
			for _, f := range cm.ImportedFunctions() {
				mod, name, _ := f.Import()
				imports = append(imports, mod+"."+name)
			}
			slices.Sort(imports)
			if !slices.Equal(imports, tc.imports) {
				t.Errorf("imports %v, want exactly %v (no env.seed, env.trace, ...)", imports, tc.imports)
			}
			if len(cm.ImportedMemories()) != 0 {
				t.Error("the module imports a memory; it must export its own")
			}
			if _, ok := cm.ExportedMemories()["memory"]; !ok {
				t.Error(`no exported "memory"`)
			}
			fns := cm.ExportedFunctions()
			for name, w := range want {
				def, ok := fns[name]
				if !ok {
					t.Errorf("missing export %s", name)
					continue
				}
				if !slices.Equal(def.ParamTypes(), w.params) || !slices.Equal(def.ResultTypes(), w.results) {
					t.Errorf("%s has %v -> %v, want %v -> %v", name, def.ParamTypes(), def.ResultTypes(), w.params, w.results)
				}
			}
		})
	}
}

// TestCompilerPinned checks that the lockfile pins AssemblyScript 0.28.x
// exactly, so every machine builds the same bytes.
func TestCompilerPinned(t *testing.T) {
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	for path, v := range map[string]any{"package.json": &pkg, "package-lock.json": &lock} {
		b, err := os.ReadFile(asDir + path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	exact := regexp.MustCompile(`^0\.28\.\d+$`)
	if v := pkg.DevDependencies["assemblyscript"]; !exact.MatchString(v) {
		t.Errorf("package.json: assemblyscript %q, want an exact 0.28.x version", v)
	}
	got := lock.Packages["node_modules/assemblyscript"]
	if got.Version != pkg.DevDependencies["assemblyscript"] || got.Integrity == "" {
		t.Errorf("package-lock.json: assemblyscript %+v, want version %q with an integrity hash", got, pkg.DevDependencies["assemblyscript"])
	}
}
