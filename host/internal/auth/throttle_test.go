package auth

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 10, 0, time.UTC)
	cases := []struct {
		name  string
		steps func(th *Throttle) bool // reports whether the 4th failure from "a" is refused
		want  bool
	}{
		{"three failures then refused", func(th *Throttle) bool {
			for range 3 {
				th.Attempt("a", t0)
			}
			ok, _ := th.Attempt("a", t0)
			return !ok
		}, true},
		{"successes are forgiven", func(th *Throttle) bool {
			for range 10 {
				th.Attempt("a", t0)
				th.Succeeded("a", t0)
			}
			ok, _ := th.Attempt("a", t0)
			return !ok
		}, false},
		{"other address unaffected", func(th *Throttle) bool {
			for range 5 {
				th.Attempt("b", t0)
			}
			ok, _ := th.Attempt("a", t0)
			return !ok
		}, false},
		{"next minute starts afresh", func(th *Throttle) bool {
			for range 5 {
				th.Attempt("a", t0)
			}
			ok, _ := th.Attempt("a", t0.Add(time.Minute))
			return !ok
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.steps(NewThrottle(3)); got != tc.want {
				t.Fatalf("refused = %v, want %v", got, tc.want)
			}
		})
	}
	_, until := NewThrottle(1).Attempt("a", t0)
	if !until.Equal(t0.Truncate(time.Minute).Add(time.Minute)) {
		t.Fatalf("until = %v", until)
	}
}

// TestThrottleRace: 64 racing attempts from one address get exactly max
// through; counting before comparing leaves no window to slip past.
func TestThrottleRace(t *testing.T) {
	th := NewThrottle(10)
	now := time.Now()
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if ok, _ := th.Attempt("203.0.113.1", now); ok {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 10 {
		t.Fatalf("%d attempts passed, want 10", passed.Load())
	}
}
