package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// TestRunSmoke runs the whole harness with tiny durations against real
// processes: the stand-in and the bare proxy (this test binary re-executed
// in their roles), and moat without plugins when bin/moat is built. It
// checks that every row measured something and that no process is left.
func TestRunSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
	targets := []string{KeyDirect, KeyBare}
	moatBin := filepath.Join(root, "bin", "moat")
	if _, err := os.Stat(moatBin); err == nil {
		targets = append(targets, KeyMoatNone)
	} else {
		t.Logf("bin/moat not built: moat is left out of the smoke run")
	}
	rep, err := Run(context.Background(), Options{
		Root: root, Self: []string{self}, MoatBin: moatBin, Work: t.TempDir(),
		Duration: time.Second, Warmup: 500 * time.Millisecond, Concurrency: []int{1, 4},
		Targets: targets, SkipLoop: true,
		PacedDelay: 2 * time.Millisecond, PacedDuration: 1500 * time.Millisecond, PacedConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != len(targets) {
		t.Fatalf("%d targets in the report, want %d", len(rep.Targets), len(targets))
	}
	for _, tr := range rep.Targets {
		if tr.NA != "" {
			t.Errorf("%s: n/a: %s", tr.Name, tr.NA)
			continue
		}
		if tr.PeakRSS <= 0 {
			t.Errorf("%s: no peak RSS", tr.Name)
		}
		for _, c := range rep.Cells {
			m := tr.Cells[c]
			if m == nil || m.Result == nil || m.Result.OK == 0 || m.Result.Errors != 0 || m.NA != "" {
				t.Errorf("%s %s: %+v", tr.Name, c, m)
				continue
			}
			if c.Stream && len(m.Result.TTFB) != m.Result.OK {
				t.Errorf("%s %s: %d first-byte times for %d requests", tr.Name, c, len(m.Result.TTFB), m.Result.OK)
			}
		}
	}
	if rep.Paced == nil || rep.Paced.NA != "" {
		t.Fatalf("paced experiment: %+v", rep.Paced)
	}
	for _, row := range rep.Paced.Rows {
		if row.Key != KeyPacedDirect && len(targets) < 3 {
			continue // moat not built: its rows are n/a
		}
		res := row.Result
		if row.NA != "" || res == nil || res.OK == 0 || res.Errors != 0 {
			t.Errorf("paced %s: %s %+v", row.Name, row.NA, res)
			continue
		}
		if len(res.MeanText) != res.OK || res.FirstText[0] <= 0 || meanDuration(res.MeanText) < res.FirstText[0] {
			t.Errorf("paced %s: first text %v, mean text %v over %d streams", row.Name, res.FirstText, meanDuration(res.MeanText), res.OK)
		}
	}
	if kids := descendants(os.Getpid()); len(kids) != 0 {
		t.Errorf("processes left running after Run: %v", kids)
	}
}

// TestRunCancelStopsProcesses cancels a run in its first cell and checks
// that it returns promptly and leaves no process behind.
func TestRunCancelStopsProcesses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the stand-in and the bare proxy are both running.
		for ctx.Err() == nil {
			if len(descendants(os.Getpid())) >= 2 {
				time.Sleep(200 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err = Run(ctx, Options{
		Root: repoRoot(t), Self: []string{self}, Work: t.TempDir(),
		Duration: time.Minute, Concurrency: []int{2}, Targets: []string{KeyBare}, SkipLoop: true, SkipPaced: true,
	})
	if err == nil {
		t.Fatal("cancelled run returned no error")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled run took %v", d)
	}
	if kids := descendants(os.Getpid()); len(kids) != 0 {
		t.Errorf("processes left running after a cancelled Run: %v", kids)
	}
}
