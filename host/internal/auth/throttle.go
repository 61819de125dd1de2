package auth

import (
	"sync"
	"time"
)

// Throttle counts failed attempts (wrong admin tokens, failed console
// logins) per source address per clock minute, and blocks an address that
// used up its failures until the minute ends. It is safe for concurrent
// use. Memory is one counter per failing address within the current minute.
type Throttle struct {
	max    int
	mu     sync.Mutex
	window time.Time
	fails  map[string]int
}

// NewThrottle returns a Throttle allowing max failures per address per
// minute.
func NewThrottle(max int) *Throttle { return &Throttle{max: max, fails: map[string]int{}} }

func (t *Throttle) roll(now time.Time) {
	if w := now.Truncate(time.Minute); !w.Equal(t.window) {
		t.window, t.fails = w, map[string]int{}
	}
}

// Blocked reports whether addr used up its failures this minute, and when
// the block ends.
func (t *Throttle) Blocked(addr string, now time.Time) (bool, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	return t.fails[addr] >= t.max, t.window.Add(time.Minute)
}

// Fail counts one failure from addr.
func (t *Throttle) Fail(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	t.fails[addr]++
}
