package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/moat-gateway/moat/host/internal/config"
)

// benchBaseline is the plain alternative, measured in the same run: encode
// the same record and append it to a buffered file, no fsync.
func benchBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "plain.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	r := rec("bench")
	for b.Loop() {
		line, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	w.Flush()
}

// BenchmarkWrite reports ns/op and x_baseline, the ratio to benchBaseline.
func BenchmarkWrite(b *testing.B) {
	// The baseline runs first; its last (final) round sets base.
	var base float64
	b.Run("baseline_buffered_file", func(b *testing.B) {
		benchBaseline(b)
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(1, "x_baseline")
	})
	if base == 0 {
		b.Fatal("baseline did not run (filter with -bench 'BenchmarkWrite/' to include it)")
	}
	for _, c := range []struct {
		name, fsync string
		parallel    bool
	}{
		{"fsync_every", "every", false},
		{"fsync_interval_1s", "1s", false},
		{"fsync_every_parallel", "every", true},
		{"fsync_interval_1s_parallel", "1s", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := config.Audit{Path: filepath.Join(b.TempDir(), "audit.jsonl"), Content: "off", FSync: c.fsync, MaxSizeMB: 1024}
			l, err := Open(cfg, Options{Secrets: func() []string { return []string{"secret-value-123"} }})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			if c.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := l.Write(ctx, rec("bench")); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := l.Write(ctx, rec("bench")); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_baseline")
		})
	}
}
