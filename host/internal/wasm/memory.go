package wasm

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// memBudget is the global cap on wasm linear memory across every pool of a
// Runtime: an instance reserves its initial memory before it is
// instantiated and every later growth, and gives it back when closed. A
// request past the cap fails at once: instantiation refuses (cause
// trap_memory_limit), and memory.grow returns -1 to the guest.
type memBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports false when that would pass the cap.
func (b *memBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *memBudget) give(n int64) { b.used.Add(-n) }

// Used returns the bytes of linear memory reserved by live instances.
func (r *Runtime) MemoryUsed() int64 { return r.mem.used.Load() }

// instanceMemory allocates one instance's linear memory against the budget.
// It implements experimental.MemoryAllocator (called once, at
// instantiation) and experimental.LinearMemory.
type instanceMemory struct {
	budget   *memBudget
	reserved int64 // taken before instantiation, for the initial size

	mu   sync.Mutex
	buf  []byte
	held int64 // bytes taken from the budget (cap(buf), or reserved)
	max  uint64
	// slot is the CPU slot of the call running on the instance (set and
	// read on the call's goroutine): a growth copies and clears memory in
	// Go code, which the scheduler can preempt, so it lets the slot go.
	slot *callSlot

	refused atomic.Bool  // a growth was refused by the global cap
	size    atomic.Int64 // the memory's size in bytes, kept after Free
}

// reserveMemory takes the initial memory of an instance from the budget.
func (r *Runtime) reserveMemory(initial int64) (*instanceMemory, error) {
	if !r.mem.take(initial) {
		return nil, pluginerr.New(pluginerr.TrapMemoryLimit,
			"%w: a new instance needs %d KiB of linear memory and the global cap of %d MiB on wasm memory is reached (%d MiB in use)",
			ErrTrap, initial>>10, r.mem.max>>20, r.mem.used.Load()>>20)
	}
	return &instanceMemory{budget: r.mem, reserved: initial, held: initial}, nil
}

// context returns ctx carrying m as the memory allocator.
func (m *instanceMemory) context(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, m)
}

// Allocate implements experimental.MemoryAllocator.
func (m *instanceMemory) Allocate(_, max uint64) experimental.LinearMemory {
	m.max = max
	return m
}

// Reallocate implements experimental.LinearMemory. The first call (the
// initial size, reserved already) never fails: wazero does not expect it to.
func (m *instanceMemory) Reallocate(size uint64) []byte {
	if m.slot != nil && m.slot.releaseCPU() {
		defer m.slot.reacquireCPU()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if size <= uint64(cap(m.buf)) {
		m.size.Store(int64(size))
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := max(size, min(2*uint64(cap(m.buf)), m.max))
	if m.buf == nil {
		newCap = size // the initial allocation: exactly what was reserved
	}
	need := int64(newCap) - m.held
	switch {
	case need <= 0:
	case m.budget.take(need):
		m.held += need
	case newCap > size && m.budget.take(int64(size)-m.held):
		newCap = size
		m.held = int64(size)
	case m.buf == nil:
		// Over-commit the initial allocation rather than crash wazero;
		// reserveMemory already checked it.
		m.budget.used.Add(need)
		m.held += need
	default:
		m.refused.Store(true)
		return nil
	}
	m.size.Store(int64(size))
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free implements experimental.LinearMemory: it gives the memory back.
func (m *instanceMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budget.give(m.held)
	m.held = 0
	m.buf = nil
}

// release gives back a reservation whose instantiation failed (wazero
// then never calls Free).
func (m *instanceMemory) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil {
		m.budget.give(m.held)
		m.held = 0
	}
}
