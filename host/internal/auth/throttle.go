package auth

import (
	"sync"
	"time"
)

// Throttle counts attempts that must not be repeated fast (admin bearer
// tokens, console logins) per source address per clock minute. An attempt
// is counted before its credential is compared, so racing attempts cannot
// get past the limit together; a successful one is then forgiven. It is
// safe for concurrent use. Memory is one counter per address that tried
// within the current minute.
type Throttle struct {
	max    int
	mu     sync.Mutex
	window time.Time
	fails  map[string]int
}

// NewThrottle returns a Throttle allowing max failed attempts per address
// per minute.
func NewThrottle(max int) *Throttle { return &Throttle{max: max, fails: map[string]int{}} }

func (t *Throttle) roll(now time.Time) {
	if w := now.Truncate(time.Minute); !w.Equal(t.window) {
		t.window, t.fails = w, map[string]int{}
	}
}

// Attempt counts one attempt from addr and reports whether it may go on to
// compare its credential: false once addr has used up its failures this
// minute; until is when the minute ends.
func (t *Throttle) Attempt(addr string, now time.Time) (ok bool, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	until = t.window.Add(time.Minute)
	if t.fails[addr] >= t.max {
		return false, until
	}
	t.fails[addr]++
	return true, until
}

// Succeeded takes back the count of an attempt from addr whose credential
// was right.
func (t *Throttle) Succeeded(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	if t.fails[addr] > 0 {
		t.fails[addr]--
	}
}
