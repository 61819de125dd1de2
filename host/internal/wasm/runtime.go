// Package wasm runs moat plugins (WebAssembly modules speaking ABI v1, see
// sdk/ABI.md) in wazero's sandbox.
//
// A Runtime holds what plugins share: the on-disk compilation cache and the
// list of host functions a plugin may import. Runtime.Load checks a module
// (exports, signatures, imports), rewrites it so that a runaway guest can be
// stopped at its deadline (RATIONALE.md), compiles it once and pre-warms a
// bounded pool of instances. Plugin.Call is safe for concurrent use.
package wasm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/moat-gateway/moat/sdk/abi"
)

// Errors a Call or Load may wrap.
var (
	// ErrClosed is returned by a call on a closed plugin or runtime.
	ErrClosed = errors.New("plugin closed")
	// ErrTimeout means the guest ran past its deadline and was stopped.
	ErrTimeout = errors.New("plugin timed out")
	// ErrTrap means the guest trapped, panicked, aborted or exited.
	ErrTrap = errors.New("plugin trapped")
	// ErrBadResult means the hook returned an unusable result: a pointer
	// out of bounds, too many bytes, or an invalid verdict.
	ErrBadResult = errors.New("plugin returned a bad result")
	// ErrRefused means Load refused the module.
	ErrRefused = errors.New("plugin refused")
)

// Runtime loads plugins. The zero value is not usable; call NewRuntime.
type Runtime struct {
	cache     wazero.CompilationCache
	logger    *slog.Logger
	wasiNames map[string]bool
	cpu       chan struct{} // CPU slots shared by every sandboxed call
	mem       *memBudget
	onBreaker func(plugin string, state BreakerState)

	mu       sync.Mutex
	closed   bool
	plugins  map[*Plugin]struct{}
	compiles map[[32]byte]*sync.Mutex
}

// RuntimeOptions configure NewRuntimeWith. The zero value is usable.
type RuntimeOptions struct {
	// CacheDir holds the compiled modules ("" keeps them in memory only).
	CacheDir string
	// Logger receives guest logs and breaker changes; nil uses
	// slog.Default().
	Logger *slog.Logger
	// MaxConcurrency caps the goroutines executing guest code at once,
	// across every plugin (default one less than GOMAXPROCS, at least 1).
	MaxConcurrency int
	// MaxMemoryBytes caps the linear memory of every instance of every
	// plugin together (default DefaultMaxMemoryBytes).
	MaxMemoryBytes int64
	// OnBreaker, when set, is told each change of a plugin's circuit
	// breaker (for metrics). It must not block.
	OnBreaker func(plugin string, state BreakerState)
}

// DefaultMaxMemoryBytes is the default global cap on wasm linear memory.
const DefaultMaxMemoryBytes = 1 << 30

// NewRuntime returns a Runtime whose compiled modules are cached in cacheDir
// ("" keeps them in memory only), with the default global caps. A nil
// logger uses slog.Default().
func NewRuntime(ctx context.Context, cacheDir string, logger *slog.Logger) (*Runtime, error) {
	return NewRuntimeWith(ctx, RuntimeOptions{CacheDir: cacheDir, Logger: logger})
}

// NewRuntimeWith returns a Runtime configured by opts.
func NewRuntimeWith(ctx context.Context, opts RuntimeOptions) (*Runtime, error) {
	logger, cacheDir := opts.Logger, opts.CacheDir
	if logger == nil {
		logger = slog.Default()
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = defaultConcurrency()
	}
	if opts.MaxMemoryBytes <= 0 {
		opts.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	var cache wazero.CompilationCache
	if cacheDir == "" {
		cache = wazero.NewCompilationCache()
	} else {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cacheDir); err != nil {
			return nil, fmt.Errorf("opening compilation cache %q: %w", cacheDir, err)
		}
	}
	// Learn the WASI function names once, from wazero's own host module.
	scratch := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	defer scratch.Close(ctx)
	cm, err := wasi_snapshot_preview1.NewBuilder(scratch).Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("compiling wasi host module: %w", err)
	}
	names := map[string]bool{}
	for name := range cm.ExportedFunctions() {
		names[name] = true
	}
	return &Runtime{
		cache:     cache,
		logger:    logger,
		wasiNames: names,
		plugins:   map[*Plugin]struct{}{},
		compiles:  map[[32]byte]*sync.Mutex{},
		cpu:       make(chan struct{}, opts.MaxConcurrency),
		mem:       &memBudget{max: opts.MaxMemoryBytes},
		onBreaker: opts.OnBreaker,
	}, nil
}

// compileLock returns the lock that collapses concurrent compiles of the
// same module: the second waits, then hits the shared cache.
func (r *Runtime) compileLock(code []byte) *sync.Mutex {
	key := sha256.Sum256(code)
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.compiles[key]
	if !ok {
		m = &sync.Mutex{}
		r.compiles[key] = m
	}
	return m
}

// checkImports refuses any import moat does not provide, naming it.
func (r *Runtime) checkImports(info *moduleInfo) error {
	for _, imp := range info.imports {
		ok := false
		if imp.kind == 0 {
			switch imp.module {
			case abi.ImportModuleWASI:
				ok = r.wasiNames[imp.name]
			case abi.ImportModuleMoat:
				ok = imp.name == abi.ImportLog // not __tick or __overflow
			case abi.ImportModuleEnv:
				ok = imp.name == abi.ImportAbort
			}
		}
		if !ok {
			kind := [...]string{"function", "table", "memory", "global"}[min(int(imp.kind), 3)]
			return fmt.Errorf("%w: imports %s %q from module %q, which moat does not provide (allowed: %s.*, %s.%s, %s.%s)",
				ErrRefused, kind, imp.name, imp.module,
				abi.ImportModuleWASI, abi.ImportModuleMoat, abi.ImportLog, abi.ImportModuleEnv, abi.ImportAbort)
		}
	}
	return nil
}

// Close closes every plugin loaded and the compilation cache.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, r.cache.Close(ctx))
	return errors.Join(errs...)
}
