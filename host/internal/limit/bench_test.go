package limit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// baselineNs is the cost of the simplest correct shared counter, a map
// increment under a mutex, measured in the same run as each benchmark.
func baselineNs(n int) float64 {
	var mu sync.Mutex
	m := map[string]int64{}
	keys := []string{"c:app", "u:app:bob", "b:g:m:203101:*"}
	start := time.Now()
	for i := 0; i < n; i++ {
		mu.Lock()
		m[keys[i%len(keys)]]++
		mu.Unlock()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// reportRatio adds x-baseline: the benchmark's ns/op over the baseline's.
func reportRatio(b *testing.B, elapsed time.Duration) {
	b.StopTimer()
	base := baselineNs(max(b.N, 1000000))
	op := float64(elapsed.Nanoseconds()) / float64(b.N)
	b.ReportMetric(op/base, "x-baseline")
}

const benchCfg = `[limits]
client_rate = "1000000000-H"
user_rate = "1000000000-H"
user_tokens_per_minute = 1000000000000
[[clients]]
id = "app"
max_in_flight = 1000
[[budgets]]
scope = "global"
period = "month"
usd = 1000000
[[budgets]]
scope = "user"
period = "day"
tokens = 1000000000000
`

func BenchmarkAdmit(b *testing.B) {
	for _, store := range stores {
		b.Run(store, func(b *testing.B) {
			l := newLimiter(b, parseCfg(b, store, benchCfg), Options{})
			ctx := context.Background()
			id := Identity{Client: "app", User: "bob"}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				tk, err := l.Admit(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				tk.Done()
			}
			reportRatio(b, time.Since(start))
		})
	}
}

func BenchmarkReserveSettle(b *testing.B) {
	for _, store := range stores {
		b.Run(store, func(b *testing.B) {
			l := newLimiter(b, parseCfg(b, store, benchCfg), Options{})
			ctx := context.Background()
			id := Identity{Client: "app", User: "bob"}
			u := Usage{InputTokens: 100, OutputTokens: 100}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				r, err := l.Reserve(ctx, id, sonnet, 1000, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Settle(ctx, sonnet, u); err != nil {
					b.Fatal(err)
				}
			}
			reportRatio(b, time.Since(start))
		})
	}
}

// BenchmarkReserveSettleParallel shows how the memory store's state file
// writes batch when calls settle concurrently.
func BenchmarkReserveSettleParallel(b *testing.B) {
	for _, store := range stores {
		b.Run(store, func(b *testing.B) {
			l := newLimiter(b, parseCfg(b, store, benchCfg), Options{})
			ctx := context.Background()
			id := Identity{Client: "app", User: "bob"}
			u := Usage{InputTokens: 100, OutputTokens: 100}
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := l.Reserve(ctx, id, sonnet, 1000, 1000)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := r.Settle(ctx, sonnet, u); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRatio(b, time.Since(start))
		})
	}
}
