package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/metrics"
)

// writeConcurrently has n goroutines write each records and returns the
// errors.
func writeConcurrently(l *Logger, n, each int) []error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Write(context.Background(), rec(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// TestGroupCommitSharesFsync: with fsync "every", concurrent records share
// fsyncs, each Write returns only after the fsync covering its record, and
// the chain stays exact.
func TestGroupCommitSharesFsync(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), `fsync = "every"`)
	l := mustOpen(t, cfg, Options{})
	var synced atomic.Int64 // records durable: counted once their sync returned
	l.syncHook = func(f *os.File) error {
		time.Sleep(2 * time.Millisecond) // a slow disk, so writers queue
		n := int64(len(readLinesNoT(f.Name())))
		if err := f.Sync(); err != nil {
			return err
		}
		synced.Store(n) // syncs run one at a time (the writer token)
		return nil
	}
	const writers, each = 32, 8
	var early atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := rec(fmt.Sprintf("w%d-%d", w, i))
				if err := l.Write(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				// A sync that has returned covered the record.
				if int64(r.Seq) > synced.Load() {
					early.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if early.Load() > 0 {
		t.Fatalf("%d Writes returned before an fsync covered their record", early.Load())
	}
	if st.Records != writers*each || st.Syncs == 0 || st.Syncs > st.Records/4 {
		t.Fatalf("stats %+v: want %d records sharing at most a quarter as many fsyncs", st, writers*each)
	}
	rep, err := verifyFiles(t, cfg.Path)
	if err != nil || rep.LastSeq != writers*each {
		t.Fatalf("%+v %v", rep, err)
	}
	t.Logf("%d records, %d fsyncs (%.1f records per fsync)", st.Records, st.Syncs, float64(st.Records)/float64(st.Syncs))
}

func readLinesNoT(path string) []string {
	b, _ := os.ReadFile(path)
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return make([]string, n)
}

// TestGroupCommitFailsClosed: a failed fsync refuses every request of its
// batch (each gets ErrWrite and is counted on the metrics page), takes
// their records out of the file, and later batches continue the chain.
func TestGroupCommitFailsClosed(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), `fsync = "every"`)
	m := metrics.New(metrics.Options{})
	l := mustOpen(t, cfg, Options{Observer: m})
	var fail atomic.Bool
	fail.Store(true)
	l.syncHook = func(f *os.File) error {
		time.Sleep(time.Millisecond)
		if fail.Load() {
			return errors.New("injected EIO")
		}
		return f.Sync()
	}
	errs := writeConcurrently(l, 16, 4)
	if len(errs) != 64 {
		t.Fatalf("%d of 64 writes failed during a failing fsync", len(errs))
	}
	for _, err := range errs {
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("error does not wrap ErrWrite: %v", err)
		}
	}
	if !errors.Is(l.Healthy(), ErrWrite) {
		t.Fatalf("Healthy: %v", l.Healthy())
	}
	if got := scrape(t, m, "moat_audit_write_failures_total"); got != "64" {
		t.Fatalf("moat_audit_write_failures_total = %q, want 64", got)
	}
	if n := len(readLinesNoT(cfg.Path)); n != 0 {
		t.Fatalf("%d refused records left in the file", n)
	}
	fail.Store(false)
	if errs := writeConcurrently(l, 16, 4); len(errs) != 0 {
		t.Fatalf("after recovery: %v", errs[0])
	}
	if l.Healthy() != nil {
		t.Fatalf("Healthy after recovery: %v", l.Healthy())
	}
	l.Close()
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
	if err != nil || rep.Records != 64 || rep.FirstSeq != 1 || rep.Checkpoint.Seq != 64 {
		t.Fatalf("%+v %v", rep, err)
	}
	if got := scrape(t, m, "moat_audit_checkpoint_seq"); got != "64" {
		t.Fatalf("moat_audit_checkpoint_seq = %q, want 64", got)
	}
}

// TestWriteFailureMetric: a record that cannot be written (full disk)
// moves moat_audit_write_failures_total; a written one does not.
func TestWriteFailureMetric(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	for _, fsync := range []string{"every", "1s"} {
		t.Run(fsync, func(t *testing.T) {
			cfg := testCfg(t, t.TempDir(), fmt.Sprintf("fsync = %q", fsync))
			m := metrics.New(metrics.Options{})
			ok := mustOpen(t, cfg, Options{Observer: m})
			if err := ok.Write(context.Background(), rec("fine")); err != nil {
				t.Fatal(err)
			}
			ok.Close()
			if got := scrape(t, m, "moat_audit_write_failures_total"); got != "0" {
				t.Fatalf("after a good write: %q", got)
			}
			full := testCfg(t, t.TempDir(), fmt.Sprintf("fsync = %q", fsync))
			if err := os.Symlink("/dev/full", full.Path); err != nil {
				t.Fatal(err)
			}
			l := mustOpen(t, full, Options{Observer: m})
			if errs := writeConcurrently(l, 8, 2); len(errs) != 16 {
				t.Fatalf("%d of 16 writes failed on a full disk", len(errs))
			}
			if got := scrape(t, m, "moat_audit_write_failures_total"); got != "16" {
				t.Fatalf("moat_audit_write_failures_total = %q, want 16", got)
			}
		})
	}
}

// scrape returns the value of an unlabelled metric on m's page.
func scrape(t *testing.T, m *metrics.Metrics, name string) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	v := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(w.Body.String())
	if v == nil {
		t.Fatalf("%s not on the metrics page", name)
	}
	return v[1]
}

// TestLastCheckpointCoversEarlyRecords: requests write (and sync) their
// records themselves, so every record can be durable before the
// checkpointer goroutine first runs; the checkpoint Close leaves must
// still name the last record. On one P, with syncs that do not enter the
// kernel, nothing else runs until Close blocks.
func TestLastCheckpointCoversEarlyRecords(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for i := range 20 {
		cfg := testCfg(t, t.TempDir(), "")
		l := mustOpen(t, cfg, Options{})
		l.syncHook = func(*os.File) error { return nil }
		for j := range 10 {
			if err := l.Write(context.Background(), rec(fmt.Sprintf("r%d", j))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		cp, ok := l.LastCheckpoint()
		if !ok || cp.Seq != 10 {
			t.Fatalf("run %d: last checkpoint %+v (%v), want seq 10", i, cp, ok)
		}
	}
}

// TestIntervalSyncFailureStays: with an interval, a failed sync keeps the
// trail unhealthy through later writes (which reach only the page cache)
// until a sync succeeds.
func TestIntervalSyncFailureStays(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), `fsync = "20ms"`)
	l := mustOpen(t, cfg, Options{})
	fail := failSyncs(l)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := l.Write(context.Background(), rec("a")); err != nil {
		t.Fatal(err)
	}
	waitFor("the failed sync", func() bool { return l.Healthy() != nil })
	for i := range 3 {
		if err := l.Write(context.Background(), rec(fmt.Sprintf("b%d", i))); err != nil {
			t.Fatal(err)
		}
		if l.Healthy() == nil {
			t.Fatalf("healthy after write %d although the last sync failed", i)
		}
	}
	fail.Store(false)
	waitFor("a sync that succeeds", func() bool { return l.Healthy() == nil })
}

// TestCloseRacingWriters: more writers than cores race Close, with and
// without rotations and failing syncs among the writes. Every
// acknowledged record is in the trail, under the last checkpoint, and the
// chain verifies; every other Write is refused, with ErrClosed once the
// log is closed.
func TestCloseRacingWriters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64 // 0: no rotation
		failSync int   // every failSync-th sync fails; 0: none
	}{
		{"plain", 0, 0},
		{"rotating", 16 << 10, 0},
		{"rotating with failing syncs", 16 << 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for run := range 10 {
				cfg := testCfg(t, t.TempDir(), "")
				l := mustOpen(t, cfg, Options{})
				if tc.maxBytes > 0 {
					l.maxBytes = tc.maxBytes
				}
				var syncs atomic.Int64
				if tc.failSync > 0 {
					l.syncHook = func(f *os.File) error {
						if syncs.Add(1)%int64(tc.failSync) == 0 {
							return errors.New("disk hiccup")
						}
						return f.Sync()
					}
				}
				var acked, refused atomic.Int64
				var wg sync.WaitGroup
				for w := range 8 * runtime.GOMAXPROCS(0) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							err := l.Write(context.Background(), rec(fmt.Sprintf("w%d-%d", w, i)))
							switch {
							case err == nil:
								acked.Add(1)
							case errors.Is(err, ErrClosed):
								return
							case tc.failSync > 0 && errors.Is(err, ErrWrite):
								refused.Add(1)
							default:
								t.Errorf("write: %v, want ErrClosed", err)
								return
							}
						}
					}()
				}
				time.Sleep(20 * time.Millisecond)
				if err := l.Close(); err != nil && tc.failSync == 0 {
					t.Fatal(err)
				}
				wg.Wait()
				files, err := Files(cfg.Path)
				if err != nil {
					t.Fatal(err)
				}
				var lines int
				for _, f := range files {
					lines += len(readLines(t, f))
				}
				if int64(lines) != acked.Load() {
					t.Fatalf("run %d: %d records in %d files, %d acknowledged", run, lines, len(files), acked.Load())
				}
				if tc.failSync > 0 && refused.Load() == 0 {
					t.Fatalf("run %d: no write was refused", run)
				}
				if tc.maxBytes > 0 && len(files) < 2 {
					t.Fatalf("run %d: no rotation", run)
				}
				rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
				if err != nil || rep.Problem != nil || rep.Checkpoint == nil || int64(rep.Checkpoint.Seq) != acked.Load() {
					t.Fatalf("run %d: verify %+v %v, want a checkpoint at %d", run, rep, err, acked.Load())
				}
			}
		})
	}
}

// failSyncs makes l's syncs fail ("disk gone") until the flag returned is
// cleared.
func failSyncs(l *Logger) *atomic.Bool {
	fail := new(atomic.Bool)
	fail.Store(true)
	l.syncHook = func(f *os.File) error {
		if fail.Load() {
			return errors.New("disk gone")
		}
		return f.Sync()
	}
	return fail
}

// TestFailedSyncStaysAnywhere: with syncs on an interval, a sync that
// fails where a file is let go (before a rotation, or of a file moved
// behind moat's back) keeps the trail unhealthy through later writes,
// which reach only the page cache, until a sync succeeds.
func TestFailedSyncStaysAnywhere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(l *Logger)
		// retries: the next write tries the failed sync again (the file
		// is still moved) and is refused too.
		retries bool
	}{
		{"rotation", func(l *Logger) { l.maxBytes = 1 }, false},
		{"moved file", func(l *Logger) {
			if err := os.Rename(l.path, l.path+".moved"); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testCfg(t, t.TempDir(), `fsync = "1h"`)
			l := mustOpen(t, cfg, Options{})
			if err := l.Write(context.Background(), rec("a")); err != nil {
				t.Fatal(err)
			}
			fail := failSyncs(l)
			l.token <- struct{}{} // the writer's state is the token holder's
			tc.setup(l)
			<-l.token
			if err := l.Write(context.Background(), rec("b")); err == nil {
				t.Fatal("the write whose sync failed was acknowledged")
			}
			l.token <- struct{}{}
			l.maxBytes = 100 << 20
			<-l.token
			if err := l.Write(context.Background(), rec("c")); (err != nil) != tc.retries {
				t.Fatalf("write after the failed sync: %v", err)
			}
			if l.Healthy() == nil {
				t.Fatal("healthy after a write although the last sync failed")
			}
			fail.Store(false)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMovedFileSyncedFirst: records written to a file that is then moved
// are synced (in the moved file) before moat starts a new one; otherwise
// the next sync, of the new file, would make them count as durable.
func TestMovedFileSyncedFirst(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), `fsync = "1h"`)
	l := mustOpen(t, cfg, Options{})
	if err := l.Write(context.Background(), rec("a")); err != nil {
		t.Fatal(err)
	}
	moved := cfg.Path + ".moved"
	if err := os.Rename(cfg.Path, moved); err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(moved)
	if err != nil {
		t.Fatal(err)
	}
	var synced atomic.Bool
	l.syncHook = func(f *os.File) error {
		if st, err := f.Stat(); err == nil && os.SameFile(st, want) {
			synced.Store(true)
		}
		return f.Sync()
	}
	if err := l.Write(context.Background(), rec("b")); err != nil {
		t.Fatal(err)
	}
	if !synced.Load() {
		t.Fatal("the moved file was let go without a sync")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
