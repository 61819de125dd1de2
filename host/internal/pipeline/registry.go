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

	"github.com/moat-gateway/moat/host/internal/config"
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

// NewRegistry loads every [[plugins]] entry of cfg: a path is read and
// checked against its sha256 pin (a mismatch refuses it); a built-in runs
// natively (runtime = "native") or as its embedded module in the sandbox
// (runtime = "wasm"). It then checks that every chain in cfg names plugins
// having that phase's hook. Any failure closes what was loaded.
func NewRegistry(ctx context.Context, cfg *config.Config, rt *wasm.Runtime, natives Natives, modules Modules) (*Registry, error) {
	r := &Registry{plugins: map[string]*entry{}}
	for i := range cfg.Plugins {
		pl := &cfg.Plugins[i]
		start := time.Now()
		e, err := load(ctx, cfg, pl, rt, natives, modules)
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
	if err := r.checkChains(cfg); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

func load(ctx context.Context, cfg *config.Config, pl *config.Plugin, rt *wasm.Runtime, natives Natives, modules Modules) (*entry, error) {
	var conf json.RawMessage
	if len(pl.Config) > 0 {
		b, err := json.Marshal(pl.Config)
		if err != nil {
			return nil, fmt.Errorf("encoding config table: %w", err)
		}
		conf = b
	}
	e := &entry{plugin: &Plugin{Name: pl.Name, OnError: pl.OnError, Config: conf, Streaming: pl.Streaming, HoldBack: pl.HoldBack}}
	var code []byte
	switch {
	case pl.Path != "":
		path := cfg.ResolvedPath(pl)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading module: %w", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, pl.SHA256) {
			return nil, fmt.Errorf("%w: %s has sha256 %s, config pins %s", ErrPinMismatch, path, got, pl.SHA256)
		}
		code = b
	case pl.Runtime == "native":
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
			return nil, fmt.Errorf("built-in %q has no embedded module in this binary (built without `make plugins`, as `go install` builds it): use runtime = \"native\" or build moat with `make build`", pl.Builtin)
		}
		code = b
	}
	if rt == nil {
		return nil, errors.New("no wasm runtime")
	}
	p, err := rt.Load(ctx, pl.Name, code, wasm.LimitsFor(pl))
	if err != nil {
		return nil, err
	}
	e.wasm = p
	e.plugin.Stage = wasmStage{p}
	e.phases = [2]bool{p.HasPhase(abi.PhaseInput), p.HasPhase(abi.PhaseOutput)}
	return e, nil
}

// checkChains refuses a chain that names a plugin lacking the phase's hook.
func (r *Registry) checkChains(cfg *config.Config) error {
	check := func(where string, phase abi.Phase, names []string) error {
		for _, n := range names {
			e, ok := r.plugins[n]
			if !ok {
				return fmt.Errorf("%s names plugin %q, which is not configured", where, n)
			}
			if !e.has(phase) {
				return fmt.Errorf("%s names plugin %q, which has no %s hook", where, n, phase)
			}
		}
		return nil
	}
	errs := []error{
		check("pipeline.input", abi.PhaseInput, cfg.Pipeline.Input),
		check("pipeline.output", abi.PhaseOutput, cfg.Pipeline.Output),
	}
	for _, cl := range cfg.Clients {
		if cl.Input != nil {
			errs = append(errs, check(fmt.Sprintf("clients[%q].input", cl.ID), abi.PhaseInput, *cl.Input))
		}
		if cl.Output != nil {
			errs = append(errs, check(fmt.Sprintf("clients[%q].output", cl.ID), abi.PhaseOutput, *cl.Output))
		}
	}
	for _, rt := range cfg.Routes {
		if rt.Input != nil {
			errs = append(errs, check(fmt.Sprintf("routes[%q].input", rt.Name), abi.PhaseInput, *rt.Input))
		}
		if rt.Output != nil {
			errs = append(errs, check(fmt.Sprintf("routes[%q].output", rt.Name), abi.PhaseOutput, *rt.Output))
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
