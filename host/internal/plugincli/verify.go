package plugincli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// errChecksFailed is returned when verify printed at least one FAIL line.
var errChecksFailed = errors.New("checks failed")

// checker prints one line per check and remembers failures.
type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) pass(name, format string, args ...any) {
	fmt.Fprintf(c.w, "PASS  %-28s %s\n", name, fmt.Sprintf(format, args...))
}

func (c *checker) fail(name, format string, args ...any) {
	c.failed++
	fmt.Fprintf(c.w, "FAIL  %-28s %s\n", name, fmt.Sprintf(format, args...))
}

func (c *checker) skip(name, format string, args ...any) {
	fmt.Fprintf(c.w, "SKIP  %-28s %s\n", name, fmt.Sprintf(format, args...))
}

func sigString(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return name(params) + " -> " + name(results)
}

// sample is one request verify sends.
type sample struct {
	name string
	text string
}

func verifySamples() []sample {
	return []sample{
		{"empty text", ""},
		{"ASCII text", "What is the capital of France? Answer in one word."},
		{"non-ASCII text", "Ça va? 日本語のテキスト, emoji 😀👍🏽, escapes \" \\ \n\t <|> \u2028"},
		{"64 KiB text", benignText(64 << 10)},
	}
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	cfgFlag := fs.String("config", "", "the plugin's config as a JSON object, sent with every sample")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: verify takes one FILE.wasm", errUsage)
	}
	cfg, err := parseConfig(*cfgFlag)
	if err != nil {
		return err
	}
	code, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("reading plugin: %w", err)
	}
	c := &checker{w: stdout}
	verifyModule(ctx, c, nameOf(pos[0]), code, cfg)
	if c.failed > 0 {
		fmt.Fprintf(stdout, "%d check(s) failed\n", c.failed)
		return errChecksFailed
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}

// verifyModule runs every check on code, printing one line each.
func verifyModule(ctx context.Context, c *checker, name string, code []byte, cfg []byte) {
	lim, err := defaultLimits()
	if err != nil {
		c.fail("default limits", "%v", err)
		return
	}
	// Load as the gateway does (the same runtime, the default limits)
	// while the static checks compile the module as written: compiling a
	// Go guest takes seconds, and the two compiles can use both cores.
	type loaded struct {
		p       *wasm.Plugin
		closeRT func()
		err     error
	}
	loadc := make(chan loaded, 1)
	go func() {
		p, closeRT, err := loadCode(ctx, name, code, &lim)
		loadc <- loaded{p, closeRT, err}
	}()
	var l loaded
	defer func() {
		if l.closeRT != nil {
			l.closeRT()
		}
	}()
	waitLoad := func() loaded {
		if l.p == nil && l.err == nil {
			l = <-loadc
		}
		return l
	}
	defer waitLoad()

	// Static checks, on the module as written.
	rcfg := wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true)
	if cacheDir != "" {
		if cache, err := wazero.NewCompilationCacheWithDir(cacheDir); err == nil {
			defer cache.Close(ctx)
			rcfg = rcfg.WithCompilationCache(cache)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rcfg)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		c.fail("module compiles", "%v", err)
		return
	}
	c.pass("module compiles", "%d bytes", len(code))
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; ok {
		c.pass("exports memory", "")
	} else {
		c.fail("exports memory", "no exported memory named %q", abi.ExportMemory)
	}
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	fns := cm.ExportedFunctions()
	type want struct {
		name            string
		params, results []api.ValueType
		required        bool
	}
	hooks := 0
	_, v1 := fns[abi.ExportMarker]
	_, v2 := fns[abi.ExportMarkerV2]
	switch {
	case v2:
		c.pass("ABI version", "v2 (%s): binary request and verdict", abi.ExportMarkerV2)
	case v1:
		c.pass("ABI version", "v1 (%s): JSON request and verdict", abi.ExportMarker)
	default:
		c.fail("ABI version", "neither %s nor %s is exported", abi.ExportMarkerV2, abi.ExportMarker)
	}
	for _, w := range []want{
		{abi.ExportMarker, nil, nil, !v2},
		{abi.ExportMarkerV2, nil, nil, false},
		{abi.ExportAlloc, []api.ValueType{i32}, []api.ValueType{i32}, true},
		{abi.ExportInput, []api.ValueType{i32, i32}, []api.ValueType{i64}, false},
		{abi.ExportOutput, []api.ValueType{i32, i32}, []api.ValueType{i64}, false},
		{abi.ExportPhases, nil, []api.ValueType{i32}, false},
		{abi.ExportInitialize, nil, nil, false},
	} {
		check := "export " + w.name
		def, ok := fns[w.name]
		wantSig := sigString(w.params, w.results)
		switch {
		case !ok && w.required:
			c.fail(check, "missing (the ABI requires %s %s)", w.name, wantSig)
		case !ok:
			c.skip(check, "not exported (optional)")
		case !slices.Equal(def.ParamTypes(), w.params) || !slices.Equal(def.ResultTypes(), w.results):
			c.fail(check, "signature %s, want %s", sigString(def.ParamTypes(), def.ResultTypes()), wantSig)
		default:
			c.pass(check, "%s", wantSig)
			if w.name == abi.ExportInput || w.name == abi.ExportOutput {
				hooks++
			}
		}
	}
	if hooks == 0 {
		c.fail("exports a hook", "neither %s nor %s is exported with the right signature", abi.ExportInput, abi.ExportOutput)
	}
	var bad []string
	var imports []string
	for _, f := range cm.ImportedFunctions() {
		mod, nm, _ := f.Import()
		imports = append(imports, mod+"."+nm)
		if !importAllowed(mod, nm) {
			bad = append(bad, mod+"."+nm)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, nm, _ := m.Import()
		bad = append(bad, mod+"."+nm+" (memory)")
	}
	switch {
	case len(bad) > 0:
		c.fail("imports allowed", "moat does not provide %s (allowed: %s.*, %s.%s, %s.%s)", strings.Join(bad, ", "),
			abi.ImportModuleWASI, abi.ImportModuleMoat, abi.ImportLog, abi.ImportModuleEnv, abi.ImportAbort)
	case len(imports) == 0:
		c.pass("imports allowed", "none")
	default:
		c.pass("imports allowed", "%s", strings.Join(compactImports(imports), ", "))
	}
	if c.failed > 0 {
		c.skip("loads in moat's runtime", "fix the failures above first")
		return
	}

	if waitLoad().err != nil {
		c.fail("loads in moat's runtime", "%v", l.err)
		return
	}
	p := l.p
	c.pass("loads in moat's runtime", "in %s, default limits (%d MiB, %s per call)", p.LoadTime().Round(time.Microsecond), lim.MemoryMB, lim.Timeout)
	if _, ok := fns[abi.ExportInitialize]; ok {
		c.pass("_initialize runs", "on every new instance")
	}
	var phases []abi.Phase
	for _, ph := range []abi.Phase{abi.PhaseInput, abi.PhaseOutput} {
		if p.HasPhase(ph) {
			phases = append(phases, ph)
		}
	}
	names := make([]string, len(phases))
	for i, ph := range phases {
		names[i] = string(ph)
	}
	c.pass("phases", "%s", strings.Join(names, ", "))
	var slowest time.Duration
	for _, ph := range phases {
		for _, s := range verifySamples() {
			check := fmt.Sprintf("%s: %s", ph, s.name)
			req := &abi.Request{Phase: ph, Text: s.text, Config: cfg,
				Context: abi.Context{Route: "verify", Client: "moat-plugin-verify", RequestID: "verify"}}
			// A timeout is retried: a busy machine can stretch one call,
			// a plugin too slow for the deadline misses it every time.
			var v abi.Verdict
			var d time.Duration
			var err error
			timeouts := 0
			for range timeoutTries {
				v, d, err = callTimed(ctx, p, req)
				if !errors.Is(err, wasm.ErrTimeout) {
					break
				}
				timeouts++
			}
			if err != nil {
				slowest = max(slowest, d)
				c.fail(check, "%v", err)
				continue
			}
			slowest = max(slowest, d)
			note := ""
			if timeouts > 0 {
				note = fmt.Sprintf(" (timed out %d time(s) before)", timeouts)
			}
			c.pass(check, "verdict %s in %s%s", v.Action, d.Round(time.Microsecond), note)
		}
	}
	if slowest <= lim.Timeout {
		c.pass("calls within timeout", "slowest %s of %s", slowest.Round(time.Microsecond), lim.Timeout)
	} else {
		c.fail("calls within timeout", "slowest %s, over the %s default", slowest.Round(time.Microsecond), lim.Timeout)
	}
	if c.failed > 0 {
		c.skip("memory under the cap", "fix the failures above first")
		return
	}
	checkMemory(ctx, c, rt, cm, phases, cfg, lim, v2)
}

func importAllowed(mod, name string) bool {
	switch mod {
	case abi.ImportModuleWASI:
		return true // wazero's WASI host module checks the name at load
	case abi.ImportModuleMoat:
		return name == abi.ImportLog
	case abi.ImportModuleEnv:
		return name == abi.ImportAbort
	}
	return false
}

// compactImports shortens a list of WASI imports to a count.
func compactImports(imports []string) []string {
	var out []string
	wasi := 0
	for _, s := range imports {
		if strings.HasPrefix(s, abi.ImportModuleWASI+".") {
			wasi++
			continue
		}
		out = append(out, s)
	}
	if wasi > 0 {
		out = append(out, fmt.Sprintf("%d %s functions", wasi, abi.ImportModuleWASI))
	}
	return out
}

// timeoutTries is how many times verify tries a sample that times out.
const timeoutTries = 3

// memoryRounds is how many times checkMemory repeats the samples.
const memoryRounds = 10

// checkMemory runs the samples repeatedly on one instance of the module as
// written (not rewritten by moat, so its memory can be read) and checks
// that its memory stays under the default cap and below the recycling
// threshold's reach.
func checkMemory(ctx context.Context, c *checker, rt wazero.Runtime, cm wazero.CompiledModule, phases []abi.Phase, cfg []byte, lim wasm.Limits, v2 bool) {
	const check = "memory under the cap"
	capBytes := uint64(lim.MemoryMB) << 20
	if err := instantiateHosts(ctx, rt); err != nil {
		c.fail(check, "%v", err)
		return
	}
	// The runtime was made without a memory limit; the cap is checked on
	// the size reached.
	mcfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().WithSysNanotime().WithSysWalltime()
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mod, err := rt.InstantiateModule(ictx, cm, mcfg)
	if err != nil {
		c.fail(check, "instantiating: %v", err)
		return
	}
	defer mod.Close(ctx)
	if fn := mod.ExportedFunction(abi.ExportInitialize); fn != nil {
		if _, err := fn.Call(ictx); err != nil {
			c.fail(check, "_initialize: %v", err)
			return
		}
	}
	start := mod.Memory().Size()
	for range memoryRounds {
		for _, ph := range phases {
			for _, s := range verifySamples() {
				if err := rawCall(ictx, mod, ph, s.text, cfg, v2); err != nil {
					c.fail(check, "%s %s: %v", ph, s.name, err)
					return
				}
				if uint64(mod.Memory().Size()) > capBytes {
					c.fail(check, "memory grew to %d MiB, over the %d MiB default cap", mod.Memory().Size()>>20, lim.MemoryMB)
					return
				}
			}
		}
	}
	end := mod.Memory().Size()
	c.pass(check, "%.1f MiB after _initialize, %.1f MiB after %d rounds of samples (cap %d MiB)",
		float64(start)/(1<<20), float64(end)/(1<<20), memoryRounds, lim.MemoryMB)
}

// instantiateHosts provides what a plugin may import, as no-ops, for the
// raw run of checkMemory.
func instantiateHosts(ctx context.Context, rt wazero.Runtime) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fmt.Errorf("instantiating wasi: %w", err)
	}
	i32 := api.ValueTypeI32
	nop := api.GoModuleFunc(func(context.Context, api.Module, []uint64) {})
	if _, err := rt.NewHostModuleBuilder(abi.ImportModuleMoat).NewFunctionBuilder().
		WithGoModuleFunction(nop, []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog).
		Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating moat host module: %w", err)
	}
	abort := api.GoModuleFunc(func(context.Context, api.Module, []uint64) { panic(errors.New("abort called")) })
	if _, err := rt.NewHostModuleBuilder(abi.ImportModuleEnv).NewFunctionBuilder().
		WithGoModuleFunction(abort, []api.ValueType{i32, i32, i32, i32}, nil).Export(abi.ImportAbort).
		Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating env host module: %w", err)
	}
	return nil
}

// rawCall runs one request through the ABI (v2 layouts when v2, else
// JSON) by hand and checks the verdict decodes.
func rawCall(ctx context.Context, mod api.Module, phase abi.Phase, text string, cfg []byte, v2 bool) error {
	var body []byte
	var err error
	if v2 {
		body, err = abi.AppendRequestV2(nil, &abi.Request{Phase: phase, Text: text, Config: cfg})
	} else {
		body, err = jsonRequest(phase, text, cfg)
	}
	if err != nil {
		return err
	}
	res, err := mod.ExportedFunction(abi.ExportAlloc).Call(ctx, uint64(len(body)))
	if err != nil {
		return fmt.Errorf("moat_alloc: %w", err)
	}
	ptr := uint32(res[0])
	if ptr == 0 || !mod.Memory().Write(ptr, body) {
		return fmt.Errorf("moat_alloc(%d) returned %d, not a writable buffer", len(body), ptr)
	}
	res, err = mod.ExportedFunction(phase.Hook()).Call(ctx, uint64(ptr), uint64(len(body)))
	if err != nil {
		return fmt.Errorf("%s: %w", phase.Hook(), err)
	}
	if res[0] == 0 {
		return nil
	}
	rp, rl := abi.UnpackResult(res[0])
	b, ok := mod.Memory().Read(rp, rl)
	if !ok {
		return fmt.Errorf("verdict at %d+%d is out of bounds", rp, rl)
	}
	if v2 {
		_, err = abi.DecodeVerdictV2(b)
	} else {
		_, err = abi.DecodeVerdict(b)
	}
	return err
}
