package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runConcurrent runs op b.N times spread over c goroutines and reports
// wall and CPU nanoseconds per record.
func runConcurrent(b *testing.B, c int, op func() error) (wall, cpu float64) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for g := 0; g < c; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	wall = float64(time.Since(t0).Nanoseconds()) / float64(b.N)
	cpu = float64((cpuTime() - cpu0).Nanoseconds()) / float64(b.N)
	b.StopTimer()
	b.ReportMetric(cpu, "cpu-ns/record")
	return wall, cpu
}

// BenchmarkGroupCommit measures the cost per record of Write with fsync
// "every" (group commit) and with a 1 s interval, at concurrency 1, 8 and
// 32, against the plain alternative measured in the same run at the same
// concurrency: json.Marshal of the same record appended to a buffered file
// (bufio.Writer behind a mutex, no fsync, no chain). x_wall and x_cpu are
// the ratios of wall time and of process CPU per record to that baseline;
// records/fsync is the mean group size.
//
//	go test -run '^$' -bench BenchmarkGroupCommit -benchtime 2000x ./host/internal/audit/
func BenchmarkGroupCommit(b *testing.B) {
	for _, c := range []int{1, 8, 32} {
		var baseWall, baseCPU float64
		b.Run(fmt.Sprintf("c=%d/baseline_marshal_buffered", c), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "plain.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := bufio.NewWriter(f)
			var mu sync.Mutex
			baseWall, baseCPU = runConcurrent(b, c, func() error {
				line, err := json.Marshal(rec("bench"))
				if err != nil {
					return err
				}
				mu.Lock()
				w.Write(line)
				err = w.WriteByte('\n')
				mu.Unlock()
				return err
			})
			w.Flush()
			b.ReportMetric(1, "x_wall")
			b.ReportMetric(1, "x_cpu")
		})
		if baseWall == 0 {
			b.Fatal("baseline did not run (filter with -bench 'BenchmarkGroupCommit' to include it)")
		}
		for _, fsync := range []string{"every", "1s"} {
			b.Run(fmt.Sprintf("c=%d/fsync_%s", c, fsync), func(b *testing.B) {
				cfg := Config{Path: filepath.Join(b.TempDir(), "audit.jsonl"), Content: "off", MaxBytes: 1024 << 20}
				if fsync == "1s" {
					cfg.FSyncInterval = time.Second
				}
				l, err := Open(cfg, Options{Secrets: func() []string { return []string{"secret-value-123"} }})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ctx := context.Background()
				wall, cpu := runConcurrent(b, c, func() error { return l.Write(ctx, rec("bench")) })
				st := l.Stats()
				b.ReportMetric(wall/baseWall, "x_wall")
				b.ReportMetric(cpu/baseCPU, "x_cpu")
				if st.Syncs > 0 {
					b.ReportMetric(float64(st.Records)/float64(st.Syncs), "records/fsync")
					b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(st.Syncs), "us/fsync")
				}
			})
		}
	}
}

// BenchmarkVerify reports how many records per second Verify checks.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{Path: filepath.Join(dir, "audit.jsonl"), Content: "off", FSyncInterval: time.Second, MaxBytes: 1024 << 20}
	l, err := Open(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8; i++ {
				l.Write(context.Background(), rec("bench"))
			}
		}()
	}
	wg.Wait()
	l.Close()
	b.ResetTimer()
	var rps float64
	for b.Loop() {
		rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
		if err != nil || rep.Records != n {
			b.Fatalf("%+v %v", rep, err)
		}
		rps = rep.RecordsPerSecond()
	}
	b.ReportMetric(rps, "records/s")
}
