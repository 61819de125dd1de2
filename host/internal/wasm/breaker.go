package wasm

import (
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// BreakerState is a plugin's circuit breaker state.
type BreakerState string

// The breaker states, after Envoy's outlier detection: closed lets calls
// through; open (quarantined) fails them at once for the cooldown; then
// half-open lets one probe call through, whose outcome closes or reopens.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// breaker counts a plugin's consecutive failures (of causes that count:
// not saturated, quarantined or canceled).
type breaker struct {
	failures int // 0: disabled
	cooldown time.Duration
	onChange func(from, to BreakerState, consecutive int)

	mu          sync.Mutex
	state       BreakerState
	consecutive int
	until       time.Time
	probing     bool
}

func newBreaker(failures int, cooldown time.Duration, onChange func(from, to BreakerState, consecutive int)) *breaker {
	return &breaker{failures: failures, cooldown: cooldown, onChange: onChange, state: BreakerClosed}
}

// allow admits a call, or refuses it with cause quarantined. probe is true
// for the one call a half-open breaker lets through.
func (b *breaker) allow(now time.Time) (probe bool, err error) {
	if b.failures <= 0 {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if now.Before(b.until) {
			return false, b.quarantined(now)
		}
		b.set(BreakerHalfOpen)
		fallthrough
	default: // half-open
		if b.probing {
			return false, b.quarantined(now)
		}
		b.probing = true
		return true, nil
	}
}

func (b *breaker) quarantined(now time.Time) error {
	left := max(0, b.until.Sub(now)).Round(time.Millisecond)
	return pluginerr.New(pluginerr.Quarantined, "quarantined by its circuit breaker after %d consecutive failures (probe in %s)", b.failures, left)
}

// abandon gives back a probe that never ran (no slot was free).
func (b *breaker) abandon(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// done records a call's outcome.
func (b *breaker) done(probe bool, cause pluginerr.Cause, now time.Time) {
	if b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if cause != "" && !cause.Counts() {
		return
	}
	if cause == "" {
		if b.state == BreakerClosed || probe {
			b.consecutive = 0
			b.set(BreakerClosed)
		}
		return
	}
	b.consecutive++
	if probe || (b.state == BreakerClosed && b.consecutive >= b.failures) {
		b.until = now.Add(b.cooldown)
		b.set(BreakerOpen)
	}
}

// set changes the state, telling onChange (under b.mu: onChange must not
// call back into the breaker).
func (b *breaker) set(to BreakerState) {
	if b.state == to {
		return
	}
	from := b.state
	b.state = to
	if b.onChange != nil {
		b.onChange(from, to, b.consecutive)
	}
}

// State returns the breaker's state; an open breaker whose cooldown is
// over reads half_open (its next call is the probe).
func (b *breaker) State(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !now.Before(b.until) {
		return BreakerHalfOpen
	}
	return b.state
}
