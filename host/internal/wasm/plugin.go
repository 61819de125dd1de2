package wasm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Limits bound one plugin. A zero field takes the default named on it, the
// same defaults as config.toml's [[plugins]] (host/internal/plan compiles
// them).
type Limits struct {
	// MemoryMB caps the guest's linear memory (default 64).
	MemoryMB int
	// Timeout bounds one call (default 100ms).
	Timeout time.Duration
	// MaxOutputBytes caps the verdict a hook returns (default 4 MiB).
	MaxOutputBytes int
	// PoolSize bounds warm instances and concurrent calls (default 4).
	PoolSize int
	// RecycleCalls retires an instance after that many calls (default 10000).
	RecycleCalls int
	// RecycleMemoryBytes retires an instance whose memory grew past it
	// (default half of MemoryMB).
	RecycleMemoryBytes int64
	// Fresh runs every call on a new instance, closed afterwards.
	Fresh bool
	// MaxConcurrency bounds the plugin's calls in flight (default one less
	// than GOMAXPROCS, at least 1: a plugin never holds every core).
	MaxConcurrency int
	// QueueTimeout bounds the wait for a free slot (the plugin's, then a
	// CPU slot of the Runtime); past it the call fails with cause
	// saturated (default 50ms).
	QueueTimeout time.Duration
	// BreakerFailures consecutive failures quarantine the plugin for
	// BreakerCooldown, after which one probe call decides (defaults 5 and
	// 30s; a negative BreakerFailures disables the breaker).
	BreakerFailures int
	BreakerCooldown time.Duration
}

// WithDefaults returns l with each zero field set to its default (see
// the fields), as Load applies them.
func (l Limits) WithDefaults() Limits {
	if l.MemoryMB <= 0 {
		l.MemoryMB = 64
	}
	if l.MemoryMB > 4096 {
		l.MemoryMB = 4096
	}
	if l.Timeout <= 0 {
		l.Timeout = 100 * time.Millisecond
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 4 << 20
	}
	if l.PoolSize <= 0 {
		l.PoolSize = 4
	}
	if l.RecycleCalls <= 0 {
		l.RecycleCalls = 10000
	}
	if l.RecycleMemoryBytes <= 0 {
		l.RecycleMemoryBytes = int64(l.MemoryMB) << 19
	}
	if l.MaxConcurrency <= 0 {
		l.MaxConcurrency = defaultConcurrency()
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = 50 * time.Millisecond
	}
	if l.BreakerFailures == 0 {
		l.BreakerFailures = 5
	}
	if l.BreakerCooldown <= 0 {
		l.BreakerCooldown = 30 * time.Second
	}
	return l
}

// initTimeout bounds instantiation plus _initialize, which for a Go guest
// takes milliseconds.
func (l Limits) initTimeout() time.Duration { return max(10*l.Timeout, 20*time.Second) }

// How a runaway guest is stopped. Only benchmarks change it, to compare
// the schemes (RATIONALE.md); anything but interruptFuel is unsafe or slow.
type interruptMode int

const (
	interruptFuel        interruptMode = iota // fuel checks calling moat.__tick
	interruptCloseOnDone                      // wazero's WithCloseOnContextDone
	interruptNone                             // nothing: a loop freezes the process
)

var interrupt = interruptFuel

// logCap is the most guest output (stdout, stderr, moat.log) kept per plugin.
const logCap = 64 << 10

// maxLogLine caps one moat.log message.
const maxLogLine = 4 << 10

// Plugin is a loaded module with its pool of instances. Its methods are safe
// for concurrent use.
type Plugin struct {
	name     string
	lim      Limits
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	hasInit  bool
	v2       bool    // exports moat_abi_v2: binary request and verdict
	phases   [2]bool // input, output
	loadTime time.Duration
	logger   *slog.Logger
	owner    *Runtime

	sem  chan struct{}  // one token per in-flight call
	idle chan *instance // warm instances
	brk  *breaker

	closed atomic.Bool

	logMu sync.Mutex
	log   []byte
}

type instance struct {
	mod      api.Module
	alloc    api.Function
	hooks    [2]api.Function
	calls    int
	closed   bool
	mem      *instanceMemory
	capBytes int64
}

func (in *instance) close(ctx context.Context) {
	if !in.closed {
		in.closed = true
		_ = in.mod.Close(context.WithoutCancel(ctx))
	}
}

// Load checks, compiles and pre-warms a plugin. It refuses, before the first
// request, a module that lacks an ABI v1 export, exports one with the wrong
// signature, or imports anything moat does not provide.
func (r *Runtime) Load(ctx context.Context, name string, wasmBytes []byte, lim Limits) (*Plugin, error) {
	start := time.Now()
	lim = lim.WithDefaults()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("loading plugin %q: %w", name, ErrClosed)
	}
	pages := uint32(lim.MemoryMB) * 16
	code, info, err := instrumentFuel(wasmBytes, pages, interrupt == interruptFuel)
	if info != nil {
		if ierr := r.checkImports(info); ierr != nil {
			return nil, fmt.Errorf("loading plugin %q: %w", name, ierr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loading plugin %q: %w: %w", name, ErrRefused, err)
	}
	if code == nil {
		return nil, fmt.Errorf("loading plugin %q: %w: unsupported imports", name, ErrRefused)
	}
	for _, must := range []string{abi.ExportMemory, abi.ExportAlloc} {
		if _, ok := info.exports[must]; !ok {
			return nil, fmt.Errorf("loading plugin %q: %w: missing export %q (not an ABI v1 plugin)", name, ErrRefused, must)
		}
	}
	_, v1 := info.exports[abi.ExportMarker]
	_, v2 := info.exports[abi.ExportMarkerV2]
	if !v1 && !v2 {
		return nil, fmt.Errorf("loading plugin %q: %w: missing export %q or %q (not a moat plugin)", name, ErrRefused, abi.ExportMarker, abi.ExportMarkerV2)
	}

	p := &Plugin{name: name, lim: lim, logger: r.logger.With("plugin", name), owner: r}
	p.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(interrupt == interruptCloseOnDone))
	fail := func(err error) (*Plugin, error) {
		_ = p.rt.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("loading plugin %q: %w", name, err)
	}
	if err := p.instantiateHostModules(ctx); err != nil {
		return fail(err)
	}
	lock := r.compileLock(code)
	lock.Lock()
	p.compiled, err = p.rt.CompileModule(ctx, code)
	lock.Unlock()
	if err != nil {
		return fail(fmt.Errorf("%w: compiling: %w", ErrRefused, err))
	}
	if err := p.checkExports(); err != nil {
		return fail(err)
	}

	p.sem = make(chan struct{}, lim.MaxConcurrency)
	p.idle = make(chan *instance, lim.PoolSize)
	p.brk = newBreaker(lim.BreakerFailures, lim.BreakerCooldown, p.breakerChanged)
	// The first instance proves instantiation works and answers moat_phases.
	first, err := p.newInstance(ctx)
	if err != nil {
		return fail(err)
	}
	if err := p.readPhases(ctx, first); err != nil {
		first.close(ctx)
		return fail(err)
	}
	if lim.Fresh {
		first.close(ctx)
	} else {
		p.idle <- first
		for i := 1; i < lim.PoolSize; i++ {
			in, err := p.newInstance(ctx)
			if err != nil {
				p.drain(ctx)
				return fail(err)
			}
			p.idle <- in
		}
	}
	p.loadTime = time.Since(start)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.drain(ctx)
		return fail(ErrClosed)
	}
	r.plugins[p] = struct{}{}
	r.mu.Unlock()
	return p, nil
}

func sig(params, results []api.ValueType) string {
	return fmt.Sprintf("%v -> %v", vt(params), vt(results))
}

func vt(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

func (p *Plugin) checkExports() error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := map[string]string{
		abi.ExportMarker:     sig(nil, nil),
		abi.ExportMarkerV2:   sig(nil, nil),
		abi.ExportAlloc:      sig([]api.ValueType{i32}, []api.ValueType{i32}),
		abi.ExportInput:      sig([]api.ValueType{i32, i32}, []api.ValueType{i64}),
		abi.ExportOutput:     sig([]api.ValueType{i32, i32}, []api.ValueType{i64}),
		abi.ExportInitialize: sig(nil, nil),
		abi.ExportPhases:     sig(nil, []api.ValueType{i32}),
	}
	fns := p.compiled.ExportedFunctions()
	for name, w := range want {
		def, ok := fns[name]
		if !ok {
			continue
		}
		if got := sig(def.ParamTypes(), def.ResultTypes()); got != w {
			return fmt.Errorf("%w: export %q has signature %s, want %s", ErrRefused, name, got, w)
		}
	}
	if _, ok := fns[abi.ExportAlloc]; !ok {
		return fmt.Errorf("%w: %q is not an exported function", ErrRefused, abi.ExportAlloc)
	}
	_, v1 := fns[abi.ExportMarker]
	_, p.v2 = fns[abi.ExportMarkerV2]
	if !v1 && !p.v2 {
		return fmt.Errorf("%w: neither %q nor %q is an exported function", ErrRefused, abi.ExportMarker, abi.ExportMarkerV2)
	}
	if _, ok := p.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("%w: %q is not an exported memory", ErrRefused, abi.ExportMemory)
	}
	_, p.phases[0] = fns[abi.ExportInput]
	_, p.phases[1] = fns[abi.ExportOutput]
	if !p.phases[0] && !p.phases[1] {
		return fmt.Errorf("%w: exports no hook (%q or %q)", ErrRefused, abi.ExportInput, abi.ExportOutput)
	}
	_, p.hasInit = fns[abi.ExportInitialize]
	return nil
}

// readPhases narrows the hooks by moat_phases when the module exports it.
func (p *Plugin) readPhases(ctx context.Context, in *instance) error {
	fn := in.mod.ExportedFunction(abi.ExportPhases)
	if fn == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, p.lim.Timeout)
	defer cancel()
	res, err := fn.Call(cctx, nil...)
	if err != nil {
		return fmt.Errorf("%w: calling %s: %w", ErrTrap, abi.ExportPhases, err)
	}
	mask := int32(uint32(res[0]))
	if mask&^(abi.PhaseBitInput|abi.PhaseBitOutput) != 0 || mask == 0 {
		return fmt.Errorf("%w: %s returned %d, want a non-zero mask of 1 (input) and 2 (output)", ErrRefused, abi.ExportPhases, mask)
	}
	p.phases[0] = p.phases[0] && mask&abi.PhaseBitInput != 0
	p.phases[1] = p.phases[1] && mask&abi.PhaseBitOutput != 0
	if !p.phases[0] && !p.phases[1] {
		return fmt.Errorf("%w: %s names no exported hook", ErrRefused, abi.ExportPhases)
	}
	return nil
}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, p.lim.initTimeout())
	defer cancel()
	w := logWriter{p}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysNanotime().
		WithSysWalltime().
		WithRandSource(rand.Reader).
		WithStdout(w).
		WithStderr(w)
	var initial int64
	if m, ok := p.compiled.ExportedMemories()[abi.ExportMemory]; ok {
		initial = int64(m.Min()) << 16
	}
	mem, err := p.owner.reserveMemory(initial)
	if err != nil {
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	mod, err := p.rt.InstantiateModule(mem.context(ctx), p.compiled, cfg)
	if err != nil {
		mem.release()
		return nil, fmt.Errorf("instantiating: %w", p.classifyInit(ctx, err))
	}
	in := &instance{
		mod:      mod,
		alloc:    mod.ExportedFunction(abi.ExportAlloc),
		hooks:    [2]api.Function{mod.ExportedFunction(abi.ExportInput), mod.ExportedFunction(abi.ExportOutput)},
		mem:      mem,
		capBytes: int64(p.lim.MemoryMB) << 20,
	}
	if p.hasInit {
		if _, err := mod.ExportedFunction(abi.ExportInitialize).Call(ctx); err != nil {
			in.close(ctx)
			return nil, fmt.Errorf("running %s: %w", abi.ExportInitialize, p.classifyInit(ctx, err))
		}
	}
	return in, nil
}

// BreakerState returns the state of the plugin's circuit breaker.
func (p *Plugin) BreakerState() BreakerState { return p.brk.State(time.Now()) }

// breakerChanged logs a state change and tells the Runtime's observer.
func (p *Plugin) breakerChanged(from, to BreakerState, consecutive int) {
	switch to {
	case BreakerOpen:
		p.logger.Warn("plugin quarantined", "from", string(from), "to", string(to), "consecutive_failures", consecutive, "cooldown", p.lim.BreakerCooldown)
	default:
		p.logger.Info("plugin breaker state", "from", string(from), "to", string(to))
	}
	if f := p.owner.onBreaker; f != nil {
		f(p.name, to)
	}
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// LoadTime returns how long Load took (check, compile, pre-warm).
func (p *Plugin) LoadTime() time.Duration { return p.loadTime }

// HasPhase reports whether the plugin handles the phase.
func (p *Plugin) HasPhase(phase abi.Phase) bool {
	switch phase {
	case abi.PhaseInput:
		return p.phases[0]
	case abi.PhaseOutput:
		return p.phases[1]
	}
	return false
}

// Logs returns the most recent guest output (stdout, stderr and moat.log),
// at most 64 KiB.
func (p *Plugin) Logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return string(p.log)
}

func (p *Plugin) appendLog(b []byte) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	if len(b) >= logCap {
		b = b[len(b)-logCap:]
	}
	if over := len(p.log) + len(b) - logCap; over > 0 {
		p.log = append(p.log[:0], p.log[over:]...)
	}
	p.log = append(p.log, b...)
}

type logWriter struct{ p *Plugin }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.appendLog(b)
	return len(b), nil
}

// Call runs the phase's hook on req and returns the verdict. A trap, a
// timeout or a bad result is an error; the instance is then discarded.
// Every error of a call that got past the phase check carries a cause
// (pluginerr.CauseOf): the breaker, the bulkheads (sdk/ABI.md) and the
// guest's own failure each name theirs.
func (p *Plugin) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	if !p.HasPhase(req.Phase) {
		return abi.Verdict{}, fmt.Errorf("plugin %q has no %s hook", p.name, req.Phase)
	}
	body, err := p.encodeRequest(req)
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("encoding request for plugin %q: %w", p.name, err)
	}
	ctx, adm, err := p.admit(ctx)
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("plugin %q, %s: %w", p.name, req.Phase, err)
	}
	defer adm.release(p)
	v, err := p.run(ctx, req.Phase, body)
	p.brk.done(adm.probe, pluginerr.CauseOf(err), time.Now())
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("plugin %q, %s: %w", p.name, req.Phase, err)
	}
	return v, nil
}

// run makes one call on a pooled (or new) instance; its error carries a
// cause.
func (p *Plugin) run(ctx context.Context, phase abi.Phase, body wireRequest) (abi.Verdict, error) {
	if p.closed.Load() {
		return abi.Verdict{}, pluginerr.Wrap(pluginerr.Canceled, ErrClosed)
	}
	var in *instance
	var err error
	select {
	case in = <-p.idle:
	default:
		if in, err = p.newInstance(ctx); err != nil {
			return abi.Verdict{}, pluginerr.Wrap(causeOf(err, nil), err)
		}
	}
	in.mem.slot, _ = ctx.Value(slotKey{}).(*callSlot)
	v, err := p.call(ctx, in, phase, body)
	in.mem.slot = nil
	if err != nil {
		err = pluginerr.Wrap(causeOf(err, in), err)
	}
	in.calls++
	if err != nil || p.lim.Fresh || in.calls >= p.lim.RecycleCalls ||
		int64(in.mod.Memory().Size()) > p.lim.RecycleMemoryBytes || p.closed.Load() {
		in.close(ctx)
	} else {
		select {
		case p.idle <- in:
		default:
			in.close(ctx)
		}
	}
	return v, err
}

func (p *Plugin) call(ctx context.Context, in *instance, phase abi.Phase, body wireRequest) (abi.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, p.lim.Timeout)
	defer cancel()
	res, err := in.alloc.Call(ctx, uint64(body.size))
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("calling %s: %w", abi.ExportAlloc, p.classify(ctx, err))
	}
	ptr := uint32(res[0])
	if ptr == 0 {
		return abi.Verdict{}, fmt.Errorf("%w: %s(%d) returned 0", ErrBadResult, abi.ExportAlloc, body.size)
	}
	mem := in.mod.Memory()
	if !body.writeTo(mem, ptr) {
		return abi.Verdict{}, fmt.Errorf("%w: %s returned %d, out of bounds for %d bytes", ErrBadResult, abi.ExportAlloc, ptr, body.size)
	}
	hook := in.hooks[0]
	if phase == abi.PhaseOutput {
		hook = in.hooks[1]
	}
	res, err = hook.Call(ctx, uint64(ptr), uint64(body.size))
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("calling %s: %w", phase.Hook(), p.classify(ctx, err))
	}
	if res[0] == 0 {
		return abi.AllowVerdict(), nil
	}
	rptr, rlen := abi.UnpackResult(res[0])
	if int64(rlen) > int64(p.lim.MaxOutputBytes) {
		return abi.Verdict{}, fmt.Errorf("%w: %w: verdict of %d bytes over the %d-byte cap", ErrBadResult, errTooLarge, rlen, p.lim.MaxOutputBytes)
	}
	view, ok := mem.Read(rptr, rlen)
	if !ok {
		return abi.Verdict{}, fmt.Errorf("%w: verdict at %d+%d is out of bounds (memory is %d bytes)", ErrBadResult, rptr, rlen, mem.Size())
	}
	v, err := p.decodeVerdict(view)
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("%w: %w (verdict: %s)", ErrBadResult, err, excerpt(view))
	}
	return v, nil
}

// wireRequest is a request encoded for the plugin's ABI version, ready to
// be written into guest memory.
type wireRequest struct {
	size int
	json []byte       // v1: the JSON document
	req  *abi.Request // v2: written straight into guest memory
}

// encodeRequest prepares req for the plugin's ABI: JSON for v1; for v2
// only the size, the binary layout being written in place by writeTo.
func (p *Plugin) encodeRequest(req *abi.Request) (wireRequest, error) {
	if p.v2 {
		req = validUTF8(req)
		return wireRequest{size: abi.RequestSizeV2(req), req: req}, nil
	}
	b, err := json.Marshal(req)
	if err != nil {
		return wireRequest{}, err
	}
	return wireRequest{size: len(b), json: b}, nil
}

// validUTF8 returns req, or a copy whose strings have each run of invalid
// UTF-8 replaced by U+FFFD: a v2 guest gets valid UTF-8, as a v1 guest does
// from the JSON encoder.
func validUTF8(req *abi.Request) *abi.Request {
	ctx := &req.Context
	if utf8.ValidString(req.Text) && utf8.ValidString(ctx.Route) && utf8.ValidString(ctx.Model) &&
		utf8.ValidString(ctx.Client) && utf8.ValidString(ctx.User) && utf8.ValidString(ctx.RequestID) &&
		utf8.ValidString(ctx.Kind) && utf8.ValidString(ctx.Role) && utf8.ValidString(ctx.Path) {
		return req
	}
	c := *req
	for _, f := range []*string{&c.Text, &c.Context.Route, &c.Context.Model, &c.Context.Client, &c.Context.User,
		&c.Context.RequestID, &c.Context.Kind, &c.Context.Role, &c.Context.Path} {
		*f = strings.ToValidUTF8(*f, "\uFFFD")
	}
	return &c
}

// writeTo writes the request at ptr; false when it does not fit in memory.
func (w wireRequest) writeTo(mem api.Memory, ptr uint32) bool {
	if w.req == nil {
		return mem.Write(ptr, w.json)
	}
	view, ok := mem.Read(ptr, uint32(w.size))
	return ok && abi.PutRequestV2(view, w.req) == nil
}

// decodeVerdict checks the verdict bytes the hook returned (a view into
// guest memory: both decoders copy what they keep).
func (p *Plugin) decodeVerdict(view []byte) (abi.Verdict, error) {
	if p.v2 {
		return abi.DecodeVerdictV2(view)
	}
	return abi.DecodeVerdict(view)
}

// excerpt quotes the start of a bad verdict for the error message.
func excerpt(b []byte) string {
	const n = 120
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// classify maps a guest error to ErrTimeout or ErrTrap. The tick stops a
// guest once the deadline has passed, which can be before the context's
// timer has fired.
func (p *Plugin) classify(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
			return fmt.Errorf("%w after %s", ErrTimeout, p.lim.Timeout)
		}
	}
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// classifyInit is classify for instantiation, whose deadline is
// initTimeout (or the caller's, when earlier), not the call timeout.
func (p *Plugin) classifyInit(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: instantiation did not finish within its deadline (at most %s)", ErrTimeout, p.lim.initTimeout())
	}
	return p.classify(ctx, err)
}

// drain closes the idle instances.
func (p *Plugin) drain(ctx context.Context) {
	for {
		select {
		case in := <-p.idle:
			in.close(ctx)
		default:
			return
		}
	}
}

// Close closes the plugin: idle instances, then its runtime (which stops
// in-flight calls at their next tick).
func (p *Plugin) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	p.owner.mu.Lock()
	delete(p.owner.plugins, p)
	p.owner.mu.Unlock()
	p.drain(ctx)
	return p.rt.Close(context.WithoutCancel(ctx))
}

// instantiateHostModules provides WASI, moat.log, env.abort and the tick.
func (p *Plugin) instantiateHostModules(ctx context.Context) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return fmt.Errorf("instantiating wasi: %w", err)
	}
	i32 := api.ValueTypeI32
	_, err := p.rt.NewHostModuleBuilder(abi.ImportModuleMoat).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(p.hostLog), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export(abi.ImportLog).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(tick), nil, []api.ValueType{i32}).
		Export(tickName).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(overflow), nil, nil).
		Export(overflowName).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating host module %q: %w", abi.ImportModuleMoat, err)
	}
	_, err = p.rt.NewHostModuleBuilder(abi.ImportModuleEnv).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abort), []api.ValueType{i32, i32, i32, i32}, nil).
		WithParameterNames("msg", "file", "line", "col").
		Export(abi.ImportAbort).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating host module %q: %w", abi.ImportModuleEnv, err)
	}
	return nil
}

// tick is moat.__tick, called by the rewritten guest when its fuel runs
// out: it stops the guest once the call's deadline has passed (read from
// the clock, not only from the context's timer, which may fire late on a
// busy machine), its context is done or the instance was closed; lets the
// next sandboxed call have the CPU slot (bulkhead.go); and otherwise hands
// out a new budget.
func tick(ctx context.Context, mod api.Module, stack []uint64) {
	if err := ctx.Err(); err != nil {
		panic(err)
	}
	if mod.IsClosed() {
		panic(ErrClosed)
	}
	if s, ok := ctx.Value(slotKey{}).(*callSlot); ok {
		now := time.Now()
		if dl, ok := ctx.Deadline(); ok && !now.Before(dl) {
			panic(context.DeadlineExceeded)
		}
		s.yield(ctx, now)
	}
	stack[0] = fuelBudget
}

// overflow is moat.__overflow, called by the rewritten guest when its call
// depth passes maxCallDepth.
func overflow(context.Context, api.Module, []uint64) {
	panic(fmt.Errorf("%w: %w (%d nested calls)", ErrTrap, errStackOverflow, maxCallDepth))
}

func (p *Plugin) hostLog(_ context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(uint32(stack[0])), uint32(stack[1]), uint32(stack[2])
	n = min(n, maxLogLine)
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Errorf("%w: moat.log(%d, %d, %d) is out of bounds", ErrTrap, level, ptr, n))
	}
	msg := string(b)
	var l slog.Level
	var tag string
	switch {
	case level <= abi.LogDebug:
		l, tag = slog.LevelDebug, "debug"
	case level == abi.LogInfo:
		l, tag = slog.LevelInfo, "info"
	case level == abi.LogWarn:
		l, tag = slog.LevelWarn, "warn"
	default:
		l, tag = slog.LevelError, "error"
	}
	p.appendLog([]byte(tag + ": " + msg + "\n"))
	p.logger.Log(context.Background(), l, "plugin log", "msg", msg)
}

// abort is AssemblyScript's env.abort: it ends the call as a plugin error,
// quoting the message when it can be read.
func abort(_ context.Context, mod api.Module, stack []uint64) {
	msg, file := asString(mod, uint32(stack[0])), asString(mod, uint32(stack[1]))
	panic(fmt.Errorf("%w: %w: %s at %s:%d:%d", ErrTrap, errAbort, msg, file, uint32(stack[2]), uint32(stack[3])))
}

// asString reads an AssemblyScript string (UTF-16, byte length at ptr-4).
func asString(mod api.Module, ptr uint32) string {
	if ptr < 4 {
		return "?"
	}
	n, ok := mod.Memory().ReadUint32Le(ptr - 4)
	if !ok || n > 2048 || n%2 != 0 {
		return "?"
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return "?"
	}
	u := make([]uint16, n/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}
