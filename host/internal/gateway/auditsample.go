package gateway

import (
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
)

// unauthSampler bounds the audit lines of requests that never
// authenticated, so that a flood of bad keys or unrouted paths cannot grow
// the audit log without bound: at most audit.unauthenticated_rate such
// lines are written per period (a fixed window, for the whole process);
// the rest are counted, and the next line written carries the count
// (Record.SampledOut). Authenticated requests are always written.
type unauthSampler struct {
	mu         sync.Mutex
	spec       string // the rate the window was parsed from
	rate       limiter.Rate
	window     time.Time
	written    int64
	sampledOut int64
}

// admit reports whether the next unauthenticated line may be written
// under spec ("60-M"), and if so how many were left out before it.
func (s *unauthSampler) admit(spec string, now time.Time) (ok bool, sampledOut int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec != s.spec {
		r, err := limiter.NewRateFromFormatted(spec)
		if err != nil || r.Limit <= 0 || r.Period <= 0 {
			r = limiter.Rate{Limit: 60, Period: time.Minute} // config validation refuses these
		}
		s.spec, s.rate, s.window, s.written = spec, r, time.Time{}, 0
	}
	if now.Sub(s.window) >= s.rate.Period || now.Before(s.window) {
		s.window, s.written = now, 0
	}
	if s.written >= s.rate.Limit {
		s.sampledOut++
		return false, 0
	}
	s.written++
	n := s.sampledOut
	s.sampledOut = 0
	return true, n
}
