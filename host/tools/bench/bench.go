// Package bench is moat's side-by-side performance benchmark: the same
// bounded load, from a Go load generator, against the Claude API stand-in
// directly, a bare reverse proxy (the floor), moat without plugins, moat with
// the default chain, moat with user plugins in Go and AssemblyScript, and
// optionally Portkey's gateway, each in its own process so its CPU time per
// request (/proc/PID/stat) and peak RSS (VmHWM) are its own. A last
// experiment checks that a plugin stuck in a loop does not stall the other
// requests. Run prints one table with ratios to the bare proxy and the
// targets moat sets itself (see Targets).
//
// `make bench` runs it through cmd/bench; `make bench-peers` adds Portkey.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/auth"
)

// Options configure Run. Zero fields take the defaults named on them.
type Options struct {
	// Root is the repository root (for building the Go plugins and the
	// default paths below). Required.
	Root string
	// Self is the command that re-executes this driver in a role (see
	// RunRole): it gets "--role NAME" and the role's flags appended.
	// Required.
	Self []string
	// MoatBin is the moat binary; default Root/bin/moat.
	MoatBin string
	// Work is the scratch directory; default Root/.cache/bench (kept
	// between runs so wazero's compilation cache stays warm).
	Work string
	// PortkeyDir holds Portkey's pinned package.json and lock; default
	// Root/host/tools/bench/peers/portkey.
	PortkeyDir string
	// Peers adds Portkey's gateway.
	Peers bool
	// Duration is each cell's measured time (default 10s), Warmup the
	// unmeasured time before it (default 1s, at most Duration/2).
	Duration, Warmup time.Duration
	// Concurrency lists the worker counts (default 1 and 32).
	Concurrency []int
	// Targets limits the run to these target keys (default all).
	Targets []string
	// SkipLoop skips the looping-plugin experiment.
	SkipLoop bool
	// LoopWorkers is how many workers call the looping plugin at once
	// (default twice the cores plus one: more callers than cores), LoopRate
	// their total requests per second (0, the default: back to back),
	// LoopTimeout the plugin's deadline (default 100ms) and LoopLoad the
	// normal load during the experiment as a fraction of moat's measured
	// throughput (default 0.15).
	LoopWorkers int
	LoopRate    float64
	LoopTimeout time.Duration
	LoopLoad    float64
	// SkipPaced skips the paced-upstream experiment. PacedDelay is the
	// paced stand-in's pause between text deltas (default 50ms) and
	// PacedConcurrency the streams in flight per target (default 8).
	SkipPaced        bool
	PacedDelay       time.Duration
	PacedConcurrency int
	// PacedDuration is each paced target's measured time (default the
	// larger of Duration and 10s: a stream takes seconds).
	PacedDuration time.Duration
	// AuditFSync is moat's [audit] fsync (default "every", as shipped).
	AuditFSync string
	// Rounds splits each cell's Duration into that many slices and runs
	// them interleaved: round by round, every cell against every target in
	// turn, so that the bare proxy and moat share the machine's slow and
	// busy moments and their ratio is not one target's luck (default 3).
	Rounds int
	// Profile enables moat's pprof and saves a CPU profile of each moat
	// target during its highest-concurrency cells (KEY-json-cpu.pprof and
	// KEY-stream-cpu.pprof in Work).
	Profile bool
	// Progress receives progress lines (default io.Discard).
	Progress io.Writer

	adminToken string
}

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.Root == "" || len(c.Self) == 0 {
		return c, errors.New("bench: Root and Self are required")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.MoatBin, filepath.Join(c.Root, "bin", "moat"))
	def(&c.Work, filepath.Join(c.Root, ".cache", "bench"))
	def(&c.PortkeyDir, filepath.Join(c.Root, "host", "tools", "bench", "peers", "portkey"))
	def(&c.AuditFSync, "every")
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = time.Second
	}
	c.Warmup = min(c.Warmup, c.Duration/2)
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	c.Rounds = min(c.Rounds, max(1, int(c.Duration/time.Second)))
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{1, 32}
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			return c, fmt.Errorf("bench: concurrency %d out of range 1..4096", n)
		}
	}
	if c.LoopWorkers <= 0 {
		c.LoopWorkers = 2*runtime.NumCPU() + 1
	}
	if c.LoopRate < 0 {
		c.LoopRate = 0
	}
	if c.PacedDelay <= 0 {
		c.PacedDelay = 50 * time.Millisecond
	}
	if c.PacedConcurrency <= 0 {
		c.PacedConcurrency = 8
	}
	if c.PacedDuration <= 0 {
		c.PacedDuration = max(c.Duration, 10*time.Second)
	}
	if c.LoopTimeout <= 0 {
		c.LoopTimeout = 100 * time.Millisecond
	}
	if c.LoopLoad <= 0 || c.LoopLoad > 1 {
		c.LoopLoad = 0.15
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	c.adminToken = "bench-admin-" + hex.EncodeToString(b[:])
	return c, nil
}

// Cell is one load shape.
type Cell struct {
	Stream      bool
	Concurrency int
}

func (c Cell) String() string {
	mode := "non-streaming"
	if c.Stream {
		mode = "streaming"
	}
	return fmt.Sprintf("%s, concurrency %d", mode, c.Concurrency)
}

// Measurement is one target under one cell.
type Measurement struct {
	Result *LoadResult
	// CPU is the target process's CPU time over the measured window.
	CPU time.Duration
	// NA says why there is no result.
	NA string
}

// CPUPerRequest is CPU / successful requests, or 0.
func (m *Measurement) CPUPerRequest() time.Duration {
	if m == nil || m.Result == nil || m.Result.OK == 0 {
		return 0
	}
	return m.CPU / time.Duration(m.Result.OK)
}

// TargetResult is one target's row group.
type TargetResult struct {
	Key, Name string
	// NA says why the target could not run.
	NA string
	// PID is the measured process (the stand-in's for the direct row).
	PID int
	// PeakRSS is the process's VmHWM at the end of its cells, in bytes.
	PeakRSS int64
	Cells   map[Cell]*Measurement
}

// LoopResult is the looping-plugin experiment.
type LoopResult struct {
	NA string
	// Rate is the normal load's request rate and Concurrency its workers.
	Rate        float64
	Concurrency int
	// Without and With are the normal requests alone and with the looping
	// requests running; Hostile is the looping requests themselves.
	Without, With, Hostile *LoadResult
	// Control is the normal requests while a separate process burns the
	// CPU the looping requests cost moat (its CPU with them minus without,
	// measured in the same run): what the stolen CPU alone costs on this
	// machine.
	Control *LoadResult
	// Workers is how many workers called the looping plugin; Cores the
	// machine's; ExtraCores the CPU the looping requests cost, in cores.
	Workers, Cores int
	ExtraCores     float64
}

// Report is a whole run.
type Report struct {
	Options Options
	Cells   []Cell
	Targets []*TargetResult
	Loop    *LoopResult
	Paced   *PacedResult
	// Notes are lines printed under the table (unavailable plugins, ...).
	Notes []string
	// Started and Took time the run.
	Started time.Time
	Took    time.Duration
}

// Target returns the result for key, or nil.
func (r *Report) Target(key string) *TargetResult {
	for _, t := range r.Targets {
		if t.Key == key {
			return t
		}
	}
	return nil
}

// Run runs the benchmark. Every process it starts is stopped before it
// returns, also when ctx ends (Ctrl-C) or a step fails.
func Run(ctx context.Context, o Options) (*Report, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{Options: opts, Started: time.Now()}
	for _, s := range []bool{false, true} {
		for _, c := range opts.Concurrency {
			rep.Cells = append(rep.Cells, Cell{Stream: s, Concurrency: c})
		}
	}
	e := &env{opts: &opts, work: opts.Work}
	if err := e.prepare(ctx); err != nil {
		return nil, err
	}
	log := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }

	standin, su, err := e.startRole(ctx, KeyDirect, RoleStandin)
	if err != nil {
		return nil, fmt.Errorf("starting the stand-in: %w", err)
	}
	defer standin.Stop(5 * time.Second)
	e.standinURL = su
	log("stand-in at %s (pid %d)", su, standin.PID())

	e.buildPlugins(ctx, rep)

	keys := []string{KeyDirect, KeyBare, KeyMoatNone, KeyMoatDefault, KeyMoatUser}
	if opts.Peers {
		keys = append(keys, KeyPortkey)
	}
	live, err := e.startAll(ctx, rep, keys, standin)
	defer func() {
		for _, l := range live {
			l.t.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	if err := e.interleave(ctx, live, rep.Cells); err != nil {
		return nil, err
	}
	for _, l := range live {
		if rss, err := PeakRSS(l.t.proc.PID()); err == nil {
			l.tr.PeakRSS = rss
		}
		l.t.stop()
	}
	live = nil
	if !opts.SkipPaced {
		rep.Paced = e.pacedExperiment(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if !opts.SkipLoop && opts.wants(KeyMoatLoop) {
		rep.Loop = e.loopExperiment(ctx, rep)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

func (o *Options) wants(key string) bool {
	if len(o.Targets) == 0 {
		return true
	}
	for _, k := range o.Targets {
		if k == key {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

// prepare makes the work directory and the keys.
func (e *env) prepare(ctx context.Context) error {
	if err := os.MkdirAll(e.work, 0o755); err != nil {
		return fmt.Errorf("making work dir: %w", err)
	}
	// Old per-target state (audit logs, budgets) would skew a new run.
	for _, k := range []string{KeyMoatNone, KeyMoatDefault, KeyMoatUser, KeyMoatLoop, KeyPacedNone, KeyPacedDefault, KeyPacedSample, KeyPacedRoute} {
		if err := os.RemoveAll(filepath.Join(e.work, k)); err != nil {
			return fmt.Errorf("cleaning %s: %w", k, err)
		}
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	e.upKey = "bench-upstream-" + hex.EncodeToString(b[:])
	e.upKeyFile = filepath.Join(e.work, "upstream.key")
	if err := os.WriteFile(e.upKeyFile, []byte(e.upKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing upstream key: %w", err)
	}
	var err error
	if e.clientKey, e.clientHash, err = auth.NewKey(); err != nil {
		return err
	}
	if e.hostileKey, e.hostHash, err = auth.NewKey(); err != nil {
		return err
	}
	return ctx.Err()
}

// buildPlugins builds the user plugins from the scaffold and the looping
// plugin, as the targets run need them.
func (e *env) buildPlugins(ctx context.Context, rep *Report) {
	o := e.opts
	needUser := o.wants(KeyMoatUser)
	needLoop := !o.SkipLoop && o.wants(KeyMoatLoop)
	if needUser {
		fmt.Fprintf(o.Progress, "scaffolding and building the user plugins (moat plugin new --lang go|as, moat plugin build)\n")
		e.goPlugin = e.scaffoldPlugin(ctx, userGoName, "go", filepath.Join(e.work, userGoName+".wasm"))
		if e.goPlugin.na != "" {
			rep.Notes = append(rep.Notes, "Go plugin n/a: "+oneLine(e.goPlugin.na))
		}
		e.asPlugin = e.scaffoldPlugin(ctx, userASName, "as", filepath.Join(e.work, userASName+".wasm"))
		if e.asPlugin.na != "" {
			rep.Notes = append(rep.Notes, "AssemblyScript plugin n/a: "+oneLine(e.asPlugin.na))
		}
	}
	if needLoop {
		fmt.Fprintf(o.Progress, "building the looping plugin\n")
		e.loopPlugin = buildGoPlugin(ctx, o.Root, "./host/tools/bench/testdata/loopplugin", filepath.Join(e.work, "loopplugin.wasm"))
	}
}

// start starts the target key.
func (e *env) start(ctx context.Context, key string, standin *Proc) (*target, error) {
	switch key {
	case KeyDirect:
		h := messagesHeader(e.upKey)
		return &target{key: key, url: e.standinURL, header: h, proc: standin, stop: func() {}}, nil
	case KeyBare:
		p, u, err := e.startRole(ctx, key, RoleBareProxy, "--upstream", e.standinURL)
		if err != nil {
			return nil, err
		}
		h := messagesHeader("bench-client")
		return &target{key: key, url: u, header: h, proc: p, stop: func() { p.Stop(5 * time.Second) }}, nil
	case KeyMoatNone, KeyMoatDefault:
		return e.startMoat(ctx, key)
	case KeyMoatUser:
		if e.goPlugin.path == "" && e.asPlugin.path == "" {
			return nil, fmt.Errorf("neither user plugin is available (Go: %s; AssemblyScript: %s)", e.goPlugin.na, e.asPlugin.na)
		}
		return e.startMoat(ctx, key)
	case KeyPortkey:
		return e.startPortkey(ctx)
	}
	return nil, fmt.Errorf("unknown target %q", key)
}

// check sends one request of each kind and verifies the answers; it
// returns the failure of each kind (keyed by stream) that failed.
func (e *env) check(ctx context.Context, t *target) (map[bool]error, error) {
	failed := map[bool]error{}
	for _, stream := range []bool{false, true} {
		res, err := Load(ctx, LoadSpec{URL: t.url + "/v1/messages", Header: t.header, Body: RequestBody(stream), Stream: stream, Concurrency: 1, Duration: 300 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		kind := map[bool]string{false: "non-streaming", true: "streaming"}[stream]
		switch {
		case res.OK == 0:
			failed[stream] = fmt.Errorf("no successful %s request: %s", kind, res.FirstError)
		case res.Errors > 0:
			failed[stream] = fmt.Errorf("%d of %d %s requests failed: %s", res.Errors, res.Errors+res.OK, kind, res.FirstError)
		}
	}
	return failed, nil
}

// liveTarget is a started target and its results.
type liveTarget struct {
	t      *target
	tr     *TargetResult
	failed map[bool]error // the kinds of request its check failed
}

// startAll starts and checks every wanted target of keys, in order. A
// target that cannot start or answer is reported n/a and left out.
func (e *env) startAll(ctx context.Context, rep *Report, keys []string, standin *Proc) ([]*liveTarget, error) {
	log := func(format string, args ...any) { fmt.Fprintf(e.opts.Progress, format+"\n", args...) }
	var live []*liveTarget
	for _, key := range keys {
		if !e.opts.wants(key) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return live, err
		}
		tr := &TargetResult{Key: key, Name: targetNames[key], Cells: map[Cell]*Measurement{}}
		rep.Targets = append(rep.Targets, tr)
		t, err := e.start(ctx, key, standin)
		if err != nil {
			if ctx.Err() != nil {
				return live, ctx.Err()
			}
			tr.NA = oneLine(err.Error())
			log("%s: n/a: %v", tr.Name, err)
			continue
		}
		tr.PID = t.proc.PID()
		failed, err := e.check(ctx, t)
		if err != nil {
			t.stop()
			return live, err
		}
		if len(failed) == 2 {
			tr.NA = "check failed: " + oneLine(failed[false].Error())
			log("%s: n/a: %v", tr.Name, failed[false])
			t.stop()
			continue
		}
		for _, c := range rep.Cells {
			m := &Measurement{}
			tr.Cells[c] = m
			if err := failed[c.Stream]; err != nil {
				m.NA = "check failed: " + oneLine(err.Error())
				log("%-26s %-32s n/a: %v", tr.Name, c, err)
			}
		}
		live = append(live, &liveTarget{t: t, tr: tr, failed: failed})
	}
	return live, nil
}

// interleave runs the rounds: in each, every cell against every live
// target in turn, for Duration/Rounds (the first round after the full
// warm-up, later ones after a short one).
func (e *env) interleave(ctx context.Context, live []*liveTarget, cells []Cell) error {
	o := e.opts
	slice := o.Duration / time.Duration(o.Rounds)
	maxConc := 0
	for _, c := range cells {
		maxConc = max(maxConc, c.Concurrency)
	}
	for r := range o.Rounds {
		warm := o.Warmup
		if r > 0 {
			warm = min(o.Warmup, 250*time.Millisecond)
		}
		for _, c := range cells {
			for _, l := range live {
				m := l.tr.Cells[c]
				if m.NA != "" {
					continue
				}
				prof := o.Profile && l.t.admin != "" && c.Concurrency == maxConc && r == o.Rounds-1
				if err := e.measureSlice(ctx, l, c, m, slice, warm, prof); err != nil {
					return err
				}
			}
		}
	}
	for _, l := range live {
		for _, c := range cells {
			if m := l.tr.Cells[c]; m.NA == "" && (m.Result == nil || m.Result.OK == 0) {
				first := ""
				if m.Result != nil {
					first = m.Result.FirstError
				}
				m.NA = "no successful request: " + oneLine(first)
			}
		}
	}
	return nil
}

// measureSlice runs one slice of cell c against l and adds it to m.
func (e *env) measureSlice(ctx context.Context, l *liveTarget, c Cell, m *Measurement, slice, warm time.Duration, prof bool) error {
	t, tr := l.t, l.tr
	var cpu0, cpu1 time.Duration
	var cpuErr error
	spec := LoadSpec{
		URL: t.url + "/v1/messages", Header: t.header, Body: RequestBody(c.Stream), Stream: c.Stream,
		Concurrency: c.Concurrency, Warmup: warm, Duration: slice,
		OnStart: func() { cpu0, cpuErr = CPUTime(t.proc.PID()) },
		OnEnd: func() {
			var err error
			if cpu1, err = CPUTime(t.proc.PID()); err != nil && cpuErr == nil {
				cpuErr = err
			}
		},
	}
	var profDone chan struct{}
	if prof {
		profDone = make(chan struct{})
		start := spec.OnStart
		spec.OnStart = func() {
			start()
			go func() {
				defer close(profDone)
				kind := map[bool]string{false: "json", true: "stream"}[c.Stream]
				if err := e.profile(ctx, t, slice, filepath.Join(e.work, t.key+"-"+kind+"-cpu.pprof")); err != nil {
					fmt.Fprintf(e.opts.Progress, "%s: profile: %v\n", tr.Name, err)
				}
			}()
		}
	}
	res, err := Load(ctx, spec)
	if profDone != nil {
		select {
		case <-profDone:
		case <-ctx.Done():
		}
	}
	if err != nil {
		return err
	}
	if cpuErr != nil {
		m.NA = "cpu: " + cpuErr.Error()
		return nil
	}
	m.CPU += cpu1 - cpu0
	m.Result = m.Result.merge(res)
	fmt.Fprintf(e.opts.Progress, "%-26s %-32s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %.3f ms/req  errors %d\n", tr.Name, c, res.RPS(), ms(Quantile(res.Latency, .5)), ms(Quantile(res.Latency, .99)), ms(cpuPer(cpu1-cpu0, res.OK)), res.Errors)
	return nil
}

// cpuPer is cpu / n, or 0.
func cpuPer(cpu time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return cpu / time.Duration(n)
}

// profile saves a CPU profile of a moat target through its admin listener.
func (e *env) profile(ctx context.Context, t *target, window time.Duration, path string) error {
	secs := max(1, int(window.Seconds())-1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.admin, secs), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.opts.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(e.opts.Progress, "%s: CPU profile in %s (go tool pprof -top %s %s)\n", t.key, path, e.opts.MoatBin, path)
	return f.Close()
}

// loopExperiment measures normal requests' p99 without and with a
// concurrent stream of requests whose plugin loops until its deadline.
func (e *env) loopExperiment(ctx context.Context, rep *Report) *LoopResult {
	lr := &LoopResult{Concurrency: 8}
	log := func(format string, args ...any) { fmt.Fprintf(e.opts.Progress, format+"\n", args...) }
	if e.loopPlugin.path == "" {
		lr.NA = "looping plugin unavailable: " + oneLine(e.loopPlugin.na)
		return lr
	}
	// The normal load is paced below capacity, so that its p99 shows stalls
	// rather than queueing.
	lr.Rate = 100
	if d := rep.Target(KeyMoatDefault); d != nil {
		for c, m := range d.Cells {
			if !c.Stream && m.Result != nil && m.Result.OK > 0 {
				lr.Rate = max(lr.Rate, e.opts.LoopLoad*m.Result.RPS())
			}
		}
	}
	t, err := e.startMoat(ctx, KeyMoatLoop)
	if err != nil {
		lr.NA = "starting moat: " + oneLine(err.Error())
		return lr
	}
	defer t.stop()
	if failed, err := e.check(ctx, t); err != nil || failed[false] != nil {
		lr.NA = fmt.Sprintf("check failed: %v%v", err, failed[false])
		return lr
	}
	lr.Workers, lr.Cores = e.opts.LoopWorkers, runtime.NumCPU()
	// moat's CPU over each normal load, to size the control.
	var cpu0, cpu1 time.Duration
	normal := LoadSpec{URL: t.url + "/v1/messages", Header: t.header, Body: RequestBody(false), Concurrency: lr.Concurrency, Warmup: e.opts.Warmup, Duration: e.opts.Duration, Rate: lr.Rate,
		OnStart: func() { cpu0, _ = CPUTime(t.proc.PID()) }, OnEnd: func() { cpu1, _ = CPUTime(t.proc.PID()) }}
	if lr.Without, err = Load(ctx, normal); err != nil {
		lr.NA = err.Error()
		return lr
	}
	cpuAlone := cpu1 - cpu0
	hh := t.header.Clone()
	hh.Set("X-Api-Key", e.hostileKey)
	// More looping callers than cores (issue 15): the bulkheads, not the
	// callers' pace, must keep the normal requests' share.
	hostile := LoadSpec{URL: t.url + "/v1/messages", Header: hh, Body: RequestBody(false), Concurrency: lr.Workers, Warmup: e.opts.Warmup, Duration: e.opts.Duration, Rate: e.opts.LoopRate}
	hctx, cancel := context.WithCancel(ctx)
	hres := make(chan *LoadResult, 1)
	go func() {
		r, _ := Load(hctx, hostile)
		hres <- r
	}()
	lr.With, err = Load(ctx, normal)
	lr.Hostile = <-hres
	cancel()
	if err != nil {
		lr.NA = err.Error()
		return lr
	}
	lr.ExtraCores = (cpu1 - cpu0 - cpuAlone).Seconds() / e.opts.Duration.Seconds()
	if lr.ExtraCores > 0.01 {
		// The control burns the same CPU in bursts of at most one core per
		// worker, every 100 ms.
		workers := int(lr.ExtraCores) + 1
		every := 100 * time.Millisecond
		burn := time.Duration(lr.ExtraCores / float64(workers) * float64(every))
		burner, _, err := e.startRole(ctx, "burner", RoleBurner, "--burn", burn.String(), "--every", every.String(), "--workers", fmt.Sprint(workers))
		if err == nil {
			lr.Control, err = Load(ctx, normal)
			burner.Stop(2 * time.Second)
			if err != nil {
				lr.NA = err.Error()
				return lr
			}
		} else {
			log("looping plugin: control burner: %v", err)
		}
	}
	log("looping plugin: normal p99 %.2f ms alone, %.2f ms with %d looping requests from %d workers (%v), costing %.2f cores", ms(Quantile(lr.Without.Latency, .99)), ms(Quantile(lr.With.Latency, .99)), statusTotal(lr.Hostile), lr.Workers, statusSummary(lr.Hostile), lr.ExtraCores)
	return lr
}

// pacedExperiment streams the reply of a paced stand-in through each
// target (see PacedResult).
func (e *env) pacedExperiment(ctx context.Context) *PacedResult {
	o := e.opts
	pr := &PacedResult{Delay: o.PacedDelay, Concurrency: o.PacedConcurrency}
	log := func(format string, args ...any) { fmt.Fprintf(o.Progress, format+"\n", args...) }
	si, su, err := e.startRole(ctx, KeyPacedDirect, RoleStandin, "--delta-delay", o.PacedDelay.String())
	if err != nil {
		pr.NA = "starting the paced stand-in: " + oneLine(err.Error())
		return pr
	}
	defer si.Stop(5 * time.Second)
	mainURL := e.standinURL
	e.standinURL = su
	defer func() { e.standinURL = mainURL }()
	log("paced stand-in at %s (deltas %s apart)", su, o.PacedDelay)
	for _, key := range []string{KeyPacedDirect, KeyPacedNone, KeyPacedDefault, KeyPacedSample, KeyPacedRoute} {
		if ctx.Err() != nil {
			return pr
		}
		row := PacedRow{Key: key, Name: pacedNames[key]}
		t, path, err := e.startPaced(ctx, key, si)
		if err != nil {
			row.NA = oneLine(err.Error())
			pr.Rows = append(pr.Rows, row)
			log("paced %s: n/a: %v", row.Name, err)
			continue
		}
		body := RequestBody(true)
		if key == KeyPacedRoute {
			body = routeBody()
		}
		res, err := Load(ctx, LoadSpec{URL: t.url + path, Header: t.header, Body: body, Stream: true, TextTimeline: true,
			Concurrency: o.PacedConcurrency, Warmup: o.Warmup, Duration: o.PacedDuration})
		t.stop()
		if err != nil {
			row.NA = oneLine(err.Error())
		} else {
			row.Result = res
			log("paced %-40s %3d streams  first text p50 %7.2f ms  mean text %8.2f ms  errors %d", row.Name, res.OK, ms(Quantile(res.FirstText, .5)), ms(meanDuration(res.MeanText)), res.Errors)
		}
		pr.Rows = append(pr.Rows, row)
	}
	return pr
}

// startPaced starts the paced experiment's target key against the paced
// stand-in si (e.standinURL) and returns it with the path to call.
func (e *env) startPaced(ctx context.Context, key string, si *Proc) (*target, string, error) {
	switch key {
	case KeyPacedDirect:
		h := messagesHeader(e.upKey)
		return &target{key: key, url: e.standinURL, header: h, proc: si, stop: func() {}}, "/v1/messages", nil
	case KeyPacedNone, KeyPacedDefault:
		base := map[string]string{KeyPacedNone: KeyMoatNone, KeyPacedDefault: KeyMoatDefault}[key]
		cfg, err := e.moatConfigAs(base, key)
		if err != nil {
			return nil, "", err
		}
		t, err := e.startMoatConfig(ctx, key, cfg)
		return t, "/v1/messages", err
	case KeyPacedSample, KeyPacedRoute:
		cfg, err := e.sampleConfig(key)
		if err != nil {
			return nil, "", err
		}
		t, err := e.startMoatConfig(ctx, key, cfg)
		path := "/v1/messages"
		if key == KeyPacedRoute {
			path = "/v1/routes/summarize"
		}
		return t, path, err
	}
	return nil, "", fmt.Errorf("unknown paced target %q", key)
}

func statusTotal(r *LoadResult) int {
	if r == nil {
		return 0
	}
	return r.OK + r.Errors
}

func statusSummary(r *LoadResult) string {
	if r == nil {
		return "none"
	}
	codes := make([]int, 0, len(r.Status))
	for code := range r.Status {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%d x status %d", r.Status[code], code)
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
