package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUnauthSampler(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration
		ok      bool
		carried int64
	}
	cases := []struct {
		name  string
		spec  string
		steps []step
	}{
		{"three per minute", "3-M", []step{
			{0, true, 0}, {time.Second, true, 0}, {2 * time.Second, true, 0},
			{3 * time.Second, false, 0}, {4 * time.Second, false, 0},
			{61 * time.Second, true, 2}, {62 * time.Second, true, 0},
		}},
		{"one per second", "1-S", []step{
			{0, true, 0}, {100 * time.Millisecond, false, 0},
			{time.Second, true, 1},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s unauthSampler
			for i, st := range tc.steps {
				ok, n := s.admit(tc.spec, t0.Add(st.at))
				if ok != st.ok || n != st.carried {
					t.Fatalf("step %d at %v: admit = %v, %d; want %v, %d", i, st.at, ok, n, st.ok, st.carried)
				}
			}
		})
	}
}

// TestUnauthSamplerRace: 500 racing lines against "50-H" write exactly 50,
// and the next window's first line carries the other 450.
func TestUnauthSamplerRace(t *testing.T) {
	var s unauthSampler
	now := time.Now()
	var written atomic.Int64
	var wg sync.WaitGroup
	for range 500 {
		wg.Go(func() {
			if ok, _ := s.admit("50-H", now); ok {
				written.Add(1)
			}
		})
	}
	wg.Wait()
	if written.Load() != 50 {
		t.Fatalf("%d lines written, want 50", written.Load())
	}
	if ok, n := s.admit("50-H", now.Add(time.Hour)); !ok || n != 450 {
		t.Fatalf("next window: %v, %d; want true, 450", ok, n)
	}
}
