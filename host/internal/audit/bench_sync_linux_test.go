package audit

import (
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkDurableAppend measures, on one goroutine, what making one
// 600-byte record durable costs in CPU (user+system) in the ways moat could
// do it: append and fdatasync (what moat does), an O_DSYNC append, and
// overwriting a file written and synced beforehand (no size change, so no
// metadata to journal) and fdatasync, or with O_DIRECT|O_DSYNC in whole
// 4 KiB blocks (no page cache, no separate sync call). The _after_idle
// case sleeps before each record, as a gateway serving one request at a
// time is idle between two records, and counts only the write and sync
// (in ns/op too): on a virtual machine a sync that finds the CPU idle
// costs more. It asks for 300 us, but timers wake late (about 1.1 ms on
// this VM): idle-us/record is the pause measured. x_cpu is the ratio to
// appending without a sync, measured in the same run. The file is in
// MOAT_AUDIT_BENCH_DIR or a temporary directory: run it on the disk the
// audit trail lives on (a tmpfs makes every sync free).
//
//	go test -run '^$' -bench BenchmarkDurableAppend -benchtime 3000x ./host/internal/audit/
func BenchmarkDurableAppend(b *testing.B) {
	dir := os.Getenv("MOAT_AUDIT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	line := make([]byte, 600)
	line[len(line)-1] = '\n'
	// O_DIRECT wants a buffer aligned to the block size.
	raw := make([]byte, 2*4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))%4096)
	block := raw[off : off+4096]
	variants := []struct {
		name string
		flag int
		op   func(f *os.File, i int) error
		idle time.Duration // a pause before each record, not counted
	}{
		{"append_no_sync", 0, func(f *os.File, _ int) error { _, err := f.Write(line); return err }, 0},
		{"append_fdatasync", 0, func(f *os.File, _ int) error {
			if _, err := f.Write(line); err != nil {
				return err
			}
			return datasync(f)
		}, 0},
		{"append_fdatasync_after_idle", 0, func(f *os.File, _ int) error {
			if _, err := f.Write(line); err != nil {
				return err
			}
			return datasync(f)
		}, 300 * time.Microsecond},
		{"append_O_DSYNC", unix.O_DSYNC, func(f *os.File, _ int) error { _, err := f.Write(line); return err }, 0},
		{"direct_dsync_overwrite", -2, func(f *os.File, i int) error {
			_, err := f.WriteAt(block, int64(i%4096)*4096)
			return err
		}, 0},
		{"overwrite_fdatasync", -1, func(f *os.File, i int) error {
			if _, err := f.WriteAt(line, int64(i%4096)*int64(len(line))); err != nil {
				return err
			}
			return datasync(f)
		}, 0},
	}
	var base float64
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			flag := os.O_CREATE | os.O_TRUNC | os.O_WRONLY
			if v.flag > 0 {
				flag |= v.flag
			}
			if v.flag >= 0 {
				flag |= os.O_APPEND
			}
			f, err := os.OpenFile(dir+"/durable-"+v.name, flag, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if v.flag < 0 {
				size := 4096 * len(line)
				if v.flag == -2 {
					size = 4096 * len(block)
				}
				if _, err := f.Write(make([]byte, size)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			if v.flag == -2 {
				g, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT|unix.O_DSYNC, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				f = g
			}
			b.ResetTimer()
			var used, idle time.Duration
			cpu0 := cpuTime()
			for i := range b.N {
				if v.idle > 0 {
					b.StopTimer()
					t0 := time.Now()
					time.Sleep(v.idle)
					idle += time.Since(t0)
					b.StartTimer()
					cpu0 = cpuTime()
				}
				if err := v.op(f, i); err != nil {
					b.Fatal(err)
				}
				if v.idle > 0 {
					used += cpuTime() - cpu0
				}
			}
			if v.idle == 0 {
				used = cpuTime() - cpu0
			}
			cpu := float64(used.Nanoseconds()) / float64(b.N)
			b.ReportMetric(cpu, "cpu-ns/record")
			if idle > 0 {
				b.ReportMetric(float64(idle.Microseconds())/float64(b.N), "idle-us/record")
			}
			if v.name == "append_no_sync" {
				base = cpu
			}
			if base > 0 {
				b.ReportMetric(cpu/base, "x_cpu")
			}
		})
	}
}
