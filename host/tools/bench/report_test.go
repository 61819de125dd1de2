package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeResult is a result with n successes of latency lat.
func fakeResult(n int, lat time.Duration) *LoadResult {
	r := &LoadResult{OK: n, Window: time.Second, Status: map[int]int{200: n}}
	for range n {
		r.Latency = append(r.Latency, lat)
		r.TTFB = append(r.TTFB, lat/2)
		r.FirstText = append(r.FirstText, lat/2)
	}
	return r
}

// fakeReport builds a report where every target has every cell with the
// given CPU per request (100 requests each).
func fakeReport(cpuPerReq map[string]time.Duration, rps map[string]int, rss int64) *Report {
	r := &Report{Options: Options{Duration: time.Second, AuditFSync: "every"}, Cells: []Cell{{false, 1}, {false, 32}, {true, 1}, {true, 32}}}
	for _, k := range []string{KeyDirect, KeyBare, KeyMoatNone, KeyMoatDefault, KeyPortkey} {
		tr := &TargetResult{Key: k, Name: targetNames[k], Cells: map[Cell]*Measurement{}, PeakRSS: rss}
		for _, c := range r.Cells {
			n := 100
			if v, ok := rps[k]; ok {
				n = v
			}
			tr.Cells[c] = &Measurement{Result: fakeResult(n, time.Millisecond), CPU: cpuPerReq[k] * time.Duration(n)}
		}
		r.Targets = append(r.Targets, tr)
	}
	return r
}

func TestVerdicts(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		cpu  map[string]time.Duration
		rps  map[string]int
		rss  int64
		want map[string]string // goal prefix -> status
	}{
		{
			name: "all within",
			cpu:  map[string]time.Duration{KeyDirect: ms / 10, KeyBare: ms, KeyMoatNone: ms * 14 / 10, KeyMoatDefault: ms * 24 / 10, KeyPortkey: 12 * ms},
			rps:  map[string]int{KeyMoatDefault: 1000, KeyPortkey: 100},
			rss:  100 << 20,
			want: map[string]string{"moat without": Pass, "moat, default chain: CPU/request <=": Pass, "moat, default chain: CPU/request >= 5x": Pass, "peak RSS": Pass, "streaming": Pass, "a looping": NA},
		},
		{
			name: "all over",
			cpu:  map[string]time.Duration{KeyBare: ms, KeyMoatNone: 2 * ms, KeyMoatDefault: 3 * ms, KeyPortkey: 12 * ms},
			rps:  map[string]int{KeyMoatDefault: 500, KeyPortkey: 100},
			rss:  130 << 20,
			want: map[string]string{"moat without": Miss, "moat, default chain: CPU/request <=": Miss, "moat, default chain: CPU/request >= 5x": Miss, "peak RSS": Miss},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fakeReport(tt.cpu, tt.rps, tt.rss)
			got := map[string]string{}
			for _, v := range r.Verdicts() {
				got[v.Goal] = v.Status
			}
			for prefix, want := range tt.want {
				found := false
				for goal, st := range got {
					if strings.HasPrefix(goal, prefix) {
						found = true
						if st != want {
							t.Errorf("%q: %s, want %s", goal, st, want)
						}
					}
				}
				if !found {
					t.Errorf("no verdict starting %q", prefix)
				}
			}
		})
	}
}

func TestLoopVerdict(t *testing.T) {
	tests := []struct {
		name        string
		alone, with time.Duration
		withErrors  int
		want        string
	}{
		{"unchanged", 10 * time.Millisecond, 10 * time.Millisecond, 0, Pass},
		{"plus 9 percent", 10 * time.Millisecond, 10900 * time.Microsecond, 0, Pass},
		{"plus 20 percent", 10 * time.Millisecond, 12 * time.Millisecond, 0, Miss},
		{"normal requests failed", 10 * time.Millisecond, 10 * time.Millisecond, 3, Miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			with := fakeResult(100, tt.with)
			with.Errors = tt.withErrors
			r := &Report{Loop: &LoopResult{Rate: 100, Concurrency: 8, Without: fakeResult(100, tt.alone), With: with, Hostile: &LoadResult{Errors: 4, Status: map[int]int{502: 4}, Window: time.Second}}}
			if v := r.loopVerdict(); v.Status != tt.want {
				t.Errorf("%s (%s), want %s", v.Status, v.Detail, tt.want)
			}
		})
	}
	if v := (&Report{Loop: &LoopResult{NA: "plugin unavailable"}}).loopVerdict(); v.Status != NA || !strings.Contains(v.Detail, "unavailable") {
		t.Errorf("unavailable: %+v", v)
	}
}

func TestPrint(t *testing.T) {
	ms := time.Millisecond
	r := fakeReport(map[string]time.Duration{KeyBare: ms, KeyMoatNone: 2 * ms, KeyMoatDefault: 2 * ms}, nil, 50<<20)
	r.Targets = append(r.Targets, &TargetResult{Key: KeyMoatUser, Name: targetNames[KeyMoatUser], NA: "neither user plugin is available"})
	r.Notes = []string{"AssemblyScript plugin n/a: missing"}
	var b bytes.Buffer
	if err := r.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"non-streaming, concurrency 32", "streaming, concurrency 1", "first byte p50 ms",
		"moat, no plugins", "2.000 (2.00x)", "n/a: neither user plugin is available",
		"[MISS] moat without plugins", "AssemblyScript plugin n/a",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
