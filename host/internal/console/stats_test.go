package console

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/moat-gateway/moat/host/internal/audit"
)

// histOf observes values into a real prometheus histogram and reads it back.
func histOf(t *testing.T, buckets []float64, values ...float64) hist {
	t.Helper()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: buckets})
	for _, v := range values {
		h.Observe(v)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	var out hist
	out.add(m.GetHistogram())
	return out
}

func TestQuantile(t *testing.T) {
	b := []float64{0.01, 0.1, 1}
	tests := []struct {
		name   string
		values []float64
		q      float64
		want   float64 // NaN: nil
	}{
		{"empty", nil, 0.5, math.NaN()},
		{"one in the first bucket", []float64{0.005}, 0.5, 0.005},
		{"all in the second bucket, median", []float64{0.05, 0.05, 0.05, 0.05}, 0.5, 0.01 + 0.09*0.5},
		{"p99 in the top bucket", []float64{0.005, 0.005, 0.5, 0.5}, 0.99, 0.1 + 0.9*(3.96-2)/2},
		{"past the last bound reports it", []float64{5, 6}, 0.5, 1},
		{"p0", []float64{0.05}, 0, 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := histOf(t, b, tt.values...).quantile(tt.q)
			if math.IsNaN(tt.want) {
				if got != nil {
					t.Fatalf("got %v, want nil", *got)
				}
				return
			}
			if got == nil || math.Abs(*got-tt.want) > 1e-9 {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHistSince(t *testing.T) {
	b := []float64{0.01, 0.1, 1}
	old := histOf(t, b, 0.005, 0.005, 0.005)
	cur := histOf(t, b, 0.005, 0.005, 0.005, 0.5, 0.5)
	w := cur.since(old)
	if w.count != 2 {
		t.Fatalf("window count %v, want 2", w.count)
	}
	if q := w.quantile(0.5); q == nil || *q <= 0.1 {
		t.Fatalf("window median %v, want in the (0.1, 1] bucket: old observations leaked in", q)
	}
	if q := cur.since(hist{}).quantile(0.5); q == nil || *q > 0.01 {
		t.Fatalf("since nothing: median %v, want <= 0.01", q)
	}
}

func TestRingWraps(t *testing.T) {
	r := newRing(3)
	for i := 1; i <= 5; i++ {
		r.push(snapshot{requests: float64(i)})
	}
	got := r.all()
	if len(got) != 3 || got[0].requests != 3 || got[2].requests != 5 {
		t.Fatalf("ring %v, want 3 4 5", got)
	}
}

func TestSpendBooks(t *testing.T) {
	var b spendBooks
	day := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		at         string
		spend      float64
		today, mon float64
	}{
		{"2026-03-30T10:00:00Z", 1, 1, 1},
		{"2026-03-30T23:59:00Z", 3, 3, 3},
		{"2026-03-31T00:01:00Z", 4, 1, 4},
		{"2026-04-01T09:00:00Z", 10, 6, 6},
		{"2026-04-01T10:00:00Z", 11, 7, 7},
	}
	for _, s := range steps {
		b.observe(day(s.at), s.spend)
		if got := s.spend - b.dayBase; got != s.today {
			t.Fatalf("%s: today %v, want %v", s.at, got, s.today)
		}
		if got := s.spend - b.monBase; got != s.mon {
			t.Fatalf("%s: month %v, want %v", s.at, got, s.mon)
		}
	}
}

func TestParseAuditQuery(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want audit.Query
		err  string
	}{
		{"empty", "", audit.Query{Limit: defaultAuditRows}, ""},
		{"fields", "request_id=req_1&client=app&user=%3Cb%3E&decision=refuse&limit=5",
			audit.Query{RequestID: "req_1", Client: "app", User: "<b>", Decision: "refuse", Limit: 5}, ""},
		{"datetime-local", "since=2026-01-02T03:04&until=2026-01-02T05:00:00Z",
			audit.Query{Since: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Until: time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC), Limit: defaultAuditRows}, ""},
		{"offset converted to UTC", "since=2026-01-02T03:04:00%2B02:00",
			audit.Query{Since: time.Date(2026, 1, 2, 1, 4, 0, 0, time.UTC), Limit: defaultAuditRows}, ""},
		{"bad decision", "decision=maybe", audit.Query{}, "decision must be"},
		{"bad time", "since=yesterday", audit.Query{}, "since:"},
		{"until before since", "since=2026-01-02&until=2026-01-01", audit.Query{}, "until must be after since"},
		{"limit too big", "limit=100000", audit.Query{}, "limit must be"},
		{"limit zero", "limit=0", audit.Query{}, "limit must be"},
		{"every problem at once", "decision=x&limit=-1&since=nope", audit.Query{}, "decision must be allow, refuse or error, got \"x\"; since:"},
		{"too long", "user=" + strings.Repeat("a", maxFieldLen+1), audit.Query{}, "user must be at most"},
		{"invalid utf-8", "client=%ff", audit.Query{}, "client must be at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAuditQuery(v)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseAuditQuery: any query string gives a bounded query or an error,
// never a panic.
func FuzzParseAuditQuery(f *testing.F) {
	f.Add("request_id=req_1&decision=allow&since=2026-01-02T03:04&limit=10")
	f.Add("since=2026-01-02T03:04:05.999999999%2B14:00&until=9999-12-31")
	f.Add("decision=%00&limit=1e3")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseAuditQuery(v)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > maxAuditRows || len(q.User) > maxFieldLen || len(q.Client) > maxFieldLen || len(q.RequestID) > maxFieldLen {
			t.Fatalf("unbounded query %+v", q)
		}
		switch q.Decision {
		case "", audit.DecisionAllow, audit.DecisionRefuse, audit.DecisionError:
		default:
			t.Fatalf("decision %q passed", q.Decision)
		}
	})
}
