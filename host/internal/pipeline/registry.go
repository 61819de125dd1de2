package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// ErrPinMismatch means a plugin file's SHA-256 differs from its pin.
var ErrPinMismatch = errors.New("sha256 pin mismatch")

// Natives returns the in-process handlers of a built-in (nil for a phase it
// lacks), and ok = false for an unknown built-in.
type Natives func(builtin string) (input, output func(abi.Request) abi.Verdict, ok bool)

// Modules returns the embedded .wasm of a built-in.
type Modules func(builtin string) ([]byte, bool)

// Registry holds every configured plugin, loaded. It is immutable after
// NewRegistry; a config reload builds a new one.
type Registry struct {
	plugins map[string]*entry
}

type entry struct {
	plugin   *Plugin
	phases   [2]bool
	wasm     *wasm.Plugin // nil for native
	loadTime time.Duration
}

// wasmStage runs a sandboxed plugin.
type wasmStage struct{ p *wasm.Plugin }

func (s wasmStage) Name() string { return s.p.Name() }

func (s wasmStage) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	return s.p.Call(ctx, req)
}

// Spec is what NewRegistry loads: [[plugins]] and the chains that name
// them, compiled from config.toml by host/internal/plan.
type Spec struct {
	// Plugins are loaded in order; names are unique.
	Plugins []PluginSpec
	// Chains are checked once every plugin is loaded, in order.
	Chains []ChainSpec
}

// PluginSpec is one plugin to load.
type PluginSpec struct {
	// Name is what chains call the plugin.
	Name string
	// Path is a module file (resolved against the config's directory);
	// SHA256 is its pinned digest in hex. An empty Path loads Builtin.
	Path, SHA256 string
	// Builtin names a built-in plugin; Native runs it as Go code instead
	// of its embedded module in the sandbox.
	Builtin string
	Native  bool
	// OnError, Streaming and HoldBack are the Plugin's fields of the
	// same names; Config is its JSON config (nil for none).
	OnError, Streaming string
	HoldBack           int
	Config             json.RawMessage
	// Limits bound the plugin in the sandbox (zero fields take wasm's
	// defaults).
	Limits wasm.Limits
}

// ChainSpec is a chain to check: Where names it in errors
// ("pipeline.input", `clients["app"].output`).
type ChainSpec struct {
	Where string
	Phase abi.Phase
	Names []string
}

// NewRegistry loads every plugin of spec: a path is read and
// checked against its sha256 pin (a mismatch refuses it); a built-in runs
// natively (runtime = "native") or as its embedded module in the sandbox
// (runtime = "wasm"). It then checks that every chain of spec names
// plugins having that phase's hook. Any failure closes what was loaded.
func NewRegistry(ctx context.Context, spec Spec, rt *wasm.Runtime, natives Natives, modules Modules) (*Registry, error) {
	r := &Registry{plugins: map[string]*entry{}}
	for i := range spec.Plugins {
		pl := &spec.Plugins[i]
		start := time.Now()
		e, err := load(ctx, pl, rt, natives, modules)
		if err != nil {
			r.Close(ctx)
			return nil, fmt.Errorf("loading plugin %q: %w", pl.Name, err)
		}
		e.loadTime = time.Since(start)
		r.plugins[pl.Name] = e
		runtime := "wasm"
		if e.wasm == nil {
			runtime = "native"
		}
		slog.Info("plugin loaded", "plugin", pl.Name, "runtime", runtime, "load_time", e.loadTime)
	}
	if err := r.checkChains(spec.Chains); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

func load(ctx context.Context, pl *PluginSpec, rt *wasm.Runtime, natives Natives, modules Modules) (*entry, error) {
	e := &entry{plugin: &Plugin{Name: pl.Name, OnError: pl.OnError, Config: pl.Config, Streaming: pl.Streaming, HoldBack: pl.HoldBack}}
	var code []byte
	switch {
	case pl.Path != "":
		path := pl.Path
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading module: %w", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, pl.SHA256) {
			return nil, fmt.Errorf("%w: %s has sha256 %s, config pins %s", ErrPinMismatch, path, got, pl.SHA256)
		}
		code = b
	case pl.Native:
		if natives == nil {
			return nil, fmt.Errorf("no native built-ins available for %q", pl.Builtin)
		}
		in, out, ok := natives(pl.Builtin)
		if !ok {
			return nil, fmt.Errorf("unknown built-in %q", pl.Builtin)
		}
		if in == nil && out == nil {
			return nil, fmt.Errorf("built-in %q has no handler", pl.Builtin)
		}
		e.plugin.Stage = &NativeStage{PluginName: pl.Name, Input: in, Output: out}
		e.phases = [2]bool{in != nil, out != nil}
		return e, nil
	default:
		if modules == nil {
			return nil, fmt.Errorf("no embedded modules available for %q", pl.Builtin)
		}
		b, ok := modules(pl.Builtin)
		if !ok {
			return nil, fmt.Errorf("built-in %q has no embedded module in this binary (host/internal/builtin/wasm lacks %s.wasm.gz: run make modules): use runtime = \"native\"", pl.Builtin, pl.Builtin)
		}
		code = b
	}
	if rt == nil {
		return nil, errors.New("no wasm runtime")
	}
	p, err := rt.Load(ctx, pl.Name, code, pl.Limits)
	if err != nil {
		return nil, err
	}
	e.wasm = p
	e.plugin.Stage = wasmStage{p}
	e.phases = [2]bool{p.HasPhase(abi.PhaseInput), p.HasPhase(abi.PhaseOutput)}
	return e, nil
}

// checkChains refuses a chain that names a plugin lacking the phase's hook.
func (r *Registry) checkChains(chains []ChainSpec) error {
	var errs []error
	for _, c := range chains {
		for _, n := range c.Names {
			e, ok := r.plugins[n]
			if !ok {
				errs = append(errs, fmt.Errorf("%s names plugin %q, which is not configured", c.Where, n))
				break
			}
			if !e.has(c.Phase) {
				errs = append(errs, fmt.Errorf("%s names plugin %q, which has no %s hook", c.Where, n, c.Phase))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (e *entry) has(phase abi.Phase) bool {
	switch phase {
	case abi.PhaseInput:
		return e.phases[0]
	case abi.PhaseOutput:
		return e.phases[1]
	}
	return false
}

// HasPhase reports whether the named plugin is loaded and has the phase's hook.
func (r *Registry) HasPhase(name string, phase abi.Phase) bool {
	e, ok := r.plugins[name]
	return ok && e.has(phase)
}

// Chain returns the plugins named, in order. An unknown name is an error.
func (r *Registry) Chain(names []string) (Chain, error) {
	c := make(Chain, 0, len(names))
	for _, n := range names {
		e, ok := r.plugins[n]
		if !ok {
			return nil, fmt.Errorf("chain names plugin %q, which is not loaded", n)
		}
		c = append(c, e.plugin)
	}
	return c, nil
}

// PhaseChain is Chain that also refuses a plugin lacking the phase's hook.
func (r *Registry) PhaseChain(phase abi.Phase, names []string) (Chain, error) {
	for _, n := range names {
		if e, ok := r.plugins[n]; ok && !e.has(phase) {
			return nil, fmt.Errorf("chain names plugin %q, which has no %s hook", n, phase)
		}
	}
	return r.Chain(names)
}

// LoadTimes returns how long each plugin took to load (compile, check and
// pre-warm for wasm; a lookup for natives).
func (r *Registry) LoadTimes() map[string]time.Duration {
	out := make(map[string]time.Duration, len(r.plugins))
	for name, e := range r.plugins {
		out[name] = e.loadTime
	}
	return out
}

// Close closes the sandboxed plugins.
func (r *Registry) Close(ctx context.Context) error {
	var errs []error
	for _, e := range r.plugins {
		if e.wasm != nil {
			errs = append(errs, e.wasm.Close(ctx))
		}
	}
	return errors.Join(errs...)
}
