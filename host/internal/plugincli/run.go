package plugincli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

func parsePhase(s string) (abi.Phase, error) {
	switch p := abi.Phase(s); p {
	case abi.PhaseInput, abi.PhaseOutput:
		return p, nil
	}
	return "", fmt.Errorf("%w: --phase must be input or output, got %q", errUsage, s)
}

// parseConfig checks that s is a JSON object (or empty).
func parseConfig(s string) (json.RawMessage, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("%w: --config must be a JSON object: %v", errUsage, err)
	}
	return json.RawMessage(s), nil
}

func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("test", stderr)
	phaseFlag := fs.String("phase", "input", "phase: input or output")
	text := fs.String("text", "", "the text to judge")
	cfgFlag := fs.String("config", "", "the plugin's config as a JSON object")
	route := fs.String("route", "", "context: the route name")
	user := fs.String("user", "", "context: the user")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: test takes one FILE.wasm", errUsage)
	}
	phase, err := parsePhase(*phaseFlag)
	if err != nil {
		return err
	}
	cfg, err := parseConfig(*cfgFlag)
	if err != nil {
		return err
	}
	p, closeRT, err := loadWasm(ctx, pos[0], nil)
	if err != nil {
		return err
	}
	defer closeRT()
	req := &abi.Request{Phase: phase, Text: *text, Config: cfg,
		Context: abi.Context{Route: *route, User: *user, Client: "moat-plugin-test", RequestID: "test"}}
	start := time.Now()
	v, err := p.Call(ctx, req)
	took := time.Since(start)
	if logs := p.Logs(); logs != "" {
		fmt.Fprintf(stderr, "plugin log:\n%s", logs)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding verdict: %w", err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	fmt.Fprintf(stdout, "time: %s (load %s)\n", took.Round(time.Microsecond), p.LoadTime().Round(time.Microsecond))
	return nil
}

// benignText returns size bytes of ordinary mixed-script text.
func benignText(size int) string {
	const unit = "The quick brown fox jumps over the lazy dog; café, naïve, 日本語, 😀. "
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(unit)
	}
	s := b.String()[:size]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// latencies summarises call durations.
type latencies struct {
	p50, p90, p99, max, total time.Duration
	n                         int
}

func summarize(ds []time.Duration) latencies {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var total time.Duration
	for _, d := range s {
		total += d
	}
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return latencies{p50: at(0.50), p90: at(0.90), p99: at(0.99), max: s[len(s)-1], total: total, n: len(s)}
}

func (l latencies) perSecond() float64 {
	if l.total <= 0 {
		return 0
	}
	return float64(l.n) / l.total.Seconds()
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	size := fs.Int("size", 4096, "input size in bytes")
	n := fs.Int("n", 2000, "calls to measure")
	phaseFlag := fs.String("phase", "input", "phase: input or output")
	cfgFlag := fs.String("config", "", "the plugin's config as a JSON object")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: bench takes one FILE.wasm", errUsage)
	}
	if *size < 0 || *size > 64<<20 || *n < 1 {
		return fmt.Errorf("%w: --size must be 0..64 MiB and --n positive", errUsage)
	}
	phase, err := parsePhase(*phaseFlag)
	if err != nil {
		return err
	}
	cfg, err := parseConfig(*cfgFlag)
	if err != nil {
		return err
	}
	lim, err := defaultLimits()
	if err != nil {
		return err
	}
	// A bench measures the plugin, not the deadline: a slow call is
	// reported, not failed.
	lim.Timeout = 10 * time.Second
	p, closeRT, err := loadWasm(ctx, pos[0], &lim)
	if err != nil {
		return err
	}
	defer closeRT()
	base, closeBase, err := loadCode(ctx, "no-op baseline", noopModule(), &lim)
	if err != nil {
		return fmt.Errorf("loading the baseline: %w", err)
	}
	defer closeBase()
	base2, closeBase2, err := loadCode(ctx, "no-op v2 baseline", noopModuleV2(), &lim)
	if err != nil {
		return fmt.Errorf("loading the v2 baseline: %w", err)
	}
	defer closeBase2()
	req := &abi.Request{Phase: phase, Text: benignText(*size), Config: cfg}
	// Warm up, then interleave plugin and baseline calls so all see the
	// same machine.
	warm := min(*n/10+1, 200)
	var pd, bd, b2d []time.Duration
	var verdict abi.Verdict
	for i := range warm + *n {
		v, d, err := callTimed(ctx, p, req)
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		verdict = v
		_, bt, err := callTimed(ctx, base, req)
		if err != nil {
			return fmt.Errorf("baseline call %d: %w", i, err)
		}
		_, b2t, err := callTimed(ctx, base2, req)
		if err != nil {
			return fmt.Errorf("v2 baseline call %d: %w", i, err)
		}
		if i >= warm {
			pd, bd, b2d = append(pd, d), append(bd, bt), append(b2d, b2t)
		}
	}
	ps, bs, b2s := summarize(pd), summarize(bd), summarize(b2d)
	us := func(d time.Duration) string { return fmt.Sprintf("%.1fus", float64(d.Nanoseconds())/1e3) }
	fmt.Fprintf(stdout, "%s, %s phase, %d-byte input, %d calls (verdict: %s)\n", nameOf(pos[0]), phase, len(req.Text), *n, verdict.Action)
	fmt.Fprintf(stdout, "%-10s %10s %10s %10s %10s %12s\n", "", "p50", "p90", "p99", "max", "calls/s")
	for _, r := range []struct {
		name string
		l    latencies
	}{{"plugin", ps}, {"no-op", bs}, {"no-op v2", b2s}} {
		fmt.Fprintf(stdout, "%-10s %10s %10s %10s %10s %12.0f\n", r.name, us(r.l.p50), us(r.l.p90), us(r.l.p99), us(r.l.max), r.l.perSecond())
	}
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }
	fmt.Fprintf(stdout, "ratio to the no-op module (same sandbox, same input): p50 %.1fx, p99 %.1fx\n", ratio(ps.p50, bs.p50), ratio(ps.p99, bs.p99))
	fmt.Fprintf(stdout, "ratio to the no-op v2 module (no JSON envelope):      p50 %.1fx, p99 %.1fx\n", ratio(ps.p50, b2s.p50), ratio(ps.p99, b2s.p99))
	return nil
}

// callTimed runs one call and times it.
func callTimed(ctx context.Context, p *wasm.Plugin, req *abi.Request) (abi.Verdict, time.Duration, error) {
	t0 := time.Now()
	v, err := p.Call(ctx, req)
	return v, time.Since(t0), err
}

// jsonRequest encodes a request as the host does.
func jsonRequest(phase abi.Phase, text string, cfg []byte) ([]byte, error) {
	b, err := json.Marshal(&abi.Request{Phase: phase, Text: text, Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return b, nil
}
