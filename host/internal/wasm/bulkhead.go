package wasm

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// CPU bulkheads (RATIONALE.md, the plugin runtime).
//
// A guest runs native code on the goroutine that called it, and Go cannot
// preempt native code: a goroutine running a hostile guest keeps its core
// until the guest returns to Go. Two bounds keep sandboxed plugins from
// taking every core:
//
//   - per plugin, at most Limits.MaxConcurrency calls are in flight; a call
//     that cannot get a slot within Limits.QueueTimeout fails at once with
//     cause saturated;
//   - per Runtime, at most RuntimeOptions.MaxConcurrency goroutines execute
//     guest code at any moment (by default one core less than GOMAXPROCS).
//     A call takes a CPU slot before it enters the guest and, at a fuel tick
//     after holding it for cpuQuantum, hands it to the next waiter in FIFO
//     order and queues again, so a looping guest shares its slot with every
//     other sandboxed call at sub-millisecond granularity instead of holding
//     it until its deadline.
//
// Native built-ins take neither.

// cpuQuantum is how long a call keeps a CPU slot before it lets the next
// waiter run.
const cpuQuantum = 500 * time.Microsecond

// cpuWait bounds the wait for a CPU slot at admission.
func cpuWait(timeout time.Duration) time.Duration { return max(time.Second, 10*timeout) }

// defaultConcurrency leaves one core for the rest of the gateway.
func defaultConcurrency() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// slotKey marks a call's context with its *callSlot.
type slotKey struct{}

// callSlot is a call's hold on the Runtime's CPU slots.
type callSlot struct {
	cpu   chan struct{}
	held  bool
	since time.Time
}

// acquire waits for a token of ch until deadline (a zero deadline never
// waits), then for ctx.
func acquire(ctx context.Context, ch chan struct{}, wait time.Duration) error {
	select {
	case ch <- struct{}{}:
		return nil
	default:
	}
	if wait <= 0 {
		return errNoSlot
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return nil
	case <-t.C:
		return errNoSlot
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNoSlot = fmt.Errorf("no slot free")

// admission is one admitted call: its slots and whether it is the breaker's
// probe.
type admission struct {
	slot  *callSlot
	probe bool
}

// admit runs the breaker, then takes a plugin slot (waiting at most the
// queue timeout) and a CPU slot. It returns ctx marked with
// the call's CPU slot for the fuel tick.
func (p *Plugin) admit(ctx context.Context) (context.Context, *admission, error) {
	probe, err := p.brk.allow(time.Now())
	if err != nil {
		return ctx, nil, err
	}
	a := &admission{probe: probe}
	if err := acquire(ctx, p.sem, p.lim.QueueTimeout); err != nil {
		p.brk.abandon(probe)
		return ctx, nil, p.saturated(err, "all %d of its slots (max_concurrency) stayed busy for %s", p.lim.MaxConcurrency, p.lim.QueueTimeout)
	}
	// CPU slots turn over every cpuQuantum, so this wait is short unless
	// the machine itself is overloaded, when it is queueing for CPU like
	// any other work: it has a generous bound (cpuWait) rather than the
	// queue timeout, so that well-behaved calls queue instead of failing.
	cpu := p.owner.cpu
	wait := cpuWait(p.lim.Timeout)
	if err := acquire(ctx, cpu, wait); err != nil {
		<-p.sem
		p.brk.abandon(probe)
		return ctx, nil, p.saturated(err, "all %d CPU slots for sandboxed plugins stayed busy for %s", cap(cpu), wait)
	}
	a.slot = &callSlot{cpu: cpu, held: true, since: time.Now()}
	return context.WithValue(ctx, slotKey{}, a.slot), a, nil
}

func (p *Plugin) saturated(err error, format string, args ...any) error {
	if err != errNoSlot {
		return pluginerr.Wrap(pluginerr.Canceled, fmt.Errorf("waiting for a slot: %w", err))
	}
	return pluginerr.New(pluginerr.Saturated, "saturated: "+format, args...)
}

// release gives back the call's slots.
func (a *admission) release(p *Plugin) {
	if a.slot.held {
		a.slot.held = false
		<-a.slot.cpu
	}
	<-p.sem
}

// release gives the CPU slot up while the call runs host code that Go can
// preempt (a memory growth copying megabytes), and reacquire takes it back
// (without a context: wazero does not expect a panic from memory.grow; the
// next tick checks the deadline).
func (s *callSlot) releaseCPU() bool {
	if !s.held {
		return false
	}
	s.held = false
	<-s.cpu
	return true
}

func (s *callSlot) reacquireCPU() {
	s.cpu <- struct{}{}
	s.held = true
	s.since = time.Now()
}

// yield is called at a fuel tick: after cpuQuantum it hands the CPU slot
// to the next waiter and queues for it again, giving up at ctx's end.
func (s *callSlot) yield(ctx context.Context, now time.Time) {
	if !s.held || now.Sub(s.since) < cpuQuantum {
		return
	}
	s.held = false
	<-s.cpu
	runtime.Gosched()
	select {
	case s.cpu <- struct{}{}:
	case <-ctx.Done():
		panic(ctx.Err())
	}
	s.held = true
	s.since = time.Now()
}
