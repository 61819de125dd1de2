package bench

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", line: "1234 (moat) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200", want: 3 * time.Second},
		{name: "name with spaces and parens", line: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1", want: 100 * time.Millisecond},
		{name: "zero", line: "5 (x) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1", want: 0},
		{name: "no name", line: "5 x S 1 5", wantErr: true},
		{name: "too short", line: "5 (x) S 1 5 5 0", wantErr: true},
		{name: "negative", line: "5 (x) S 1 5 5 0 -1 0 0 0 0 0 -7 3 0", wantErr: true},
		{name: "not a number", line: "5 (x) S 1 5 5 0 -1 0 0 0 0 0 u 3 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "present", status: "Name:\tmoat\nVmPeak:\t  99 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 10 kB\n", want: 20 << 20},
		{name: "missing", status: "Name:\tmoat\nVmRSS:\t 10 kB\n", wantErr: true},
		{name: "bad unit", status: "VmHWM:\t 10 MB\n", wantErr: true},
		{name: "bad number", status: "VmHWM:\t x kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM([]byte(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1234 (moat) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseStatCPU(b)
		if err == nil && d < 0 {
			t.Fatalf("negative cpu time %v from %q", d, b)
		}
	})
}

func FuzzParseVmHWM(f *testing.F) {
	f.Add([]byte("VmHWM:\t   20480 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseVmHWM(b)
		if err == nil && n < 0 {
			t.Fatalf("negative rss %d from %q", n, b)
		}
	})
}

// TestProcMeasuresAndStops starts a real child that burns CPU and spawns a
// grandchild, reads its CPU time and peak RSS, and checks that Stop ends the
// whole process group.
func TestProcMeasuresAndStops(t *testing.T) {
	dir := t.TempDir()
	script := `echo ready; sleep 30 & i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done; wait`
	p, err := StartProc("burner", []string{"/bin/sh", "-c", script}, nil, dir, filepath.Join(dir, "burner.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	if _, err := p.WaitLog(context.Background(), regexp.MustCompile(`^ready$`), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var cpu time.Duration
	deadline := time.Now().Add(10 * time.Second)
	for cpu < 50*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if cpu, err = CPUTime(p.PID()); err != nil {
			t.Fatal(err)
		}
	}
	if cpu < 50*time.Millisecond {
		t.Errorf("a busy shell used %v of CPU in 10s", cpu)
	}
	if rss, err := PeakRSS(p.PID()); err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
	kids := descendants(os.Getpid())
	if len(kids) < 2 {
		t.Fatalf("want the shell and its sleep, found %v", kids)
	}
	p.Stop(time.Second)
	if !p.Exited() {
		t.Fatal("process still running after Stop")
	}
	waitGone(t, kids)
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	parents := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parents[pp] = append(parents[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for _, k := range parents[c] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// waitGone fails unless every pid has ended (or is a zombie) within 5s.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}
