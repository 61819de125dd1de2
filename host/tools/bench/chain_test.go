package bench

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestDefaultChainCoversSample: the benchmark's default chain runs every
// stage of the sample config's [pipeline] (the chain an operator starts
// from), configured as there, so the benchmark never measures less work
// than moat ships with.
func TestDefaultChainCoversSample(t *testing.T) {
	var sample struct {
		Pipeline struct{ Input, Output []string }
		Plugins  []struct {
			Name, Builtin string
			Config        map[string]any
		}
	}
	if _, err := toml.DecodeFile(filepath.Join("..", "..", "..", "config.toml"), &sample); err != nil {
		t.Fatal(err)
	}
	builtinOf := map[string]string{}
	configOf := map[string]map[string]any{}
	for _, p := range sample.Plugins {
		builtinOf[p.Name] = p.Builtin
		configOf[p.Name] = p.Config
	}
	for _, c := range []struct {
		phase        string
		sample, mine []string
	}{{"input", sample.Pipeline.Input, DefaultInput}, {"output", sample.Pipeline.Output, DefaultOutput}} {
		for _, name := range c.sample {
			b := builtinOf[name]
			if b == "" {
				t.Errorf("%s stage %q of config.toml is not a built-in: the benchmark cannot run it", c.phase, name)
				continue
			}
			if !slices.Contains(c.mine, b) {
				t.Errorf("config.toml's %s chain runs %q; the benchmark's default chain %v does not", c.phase, b, c.mine)
			}
			var mine struct{ Config map[string]any }
			if _, err := toml.Decode(builtinExtra[b], &mine); err != nil {
				t.Fatalf("the benchmark's TOML for %q: %v", b, err)
			}
			if !reflect.DeepEqual(mine.Config, configOf[name]) {
				t.Errorf("%q: the benchmark configures %v, config.toml %v", b, mine.Config, configOf[name])
			}
		}
	}
}
