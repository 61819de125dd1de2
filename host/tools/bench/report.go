package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdict states.
const (
	Pass = "PASS"
	Miss = "MISS"
	NA   = "n/a"
)

// Verdict is one target moat sets itself, judged on a report.
type Verdict struct {
	// Goal names the target ("moat without plugins: CPU/request <= 1.5x the bare proxy").
	Goal string
	// Detail gives the numbers behind the verdict.
	Detail string
	// Status is Pass, Miss or NA.
	Status string
}

// Limits of the targets.
const (
	LimitNoPluginsCPU  = 1.5
	LimitDefaultCPU    = 2.5
	LimitPeerCPU       = 5.0
	LimitFirstByte     = time.Millisecond
	LimitRSS           = 120 << 20
	LimitLoopP99Growth = 0.10
)

// Verdicts judges the report against moat's targets.
func (r *Report) Verdicts() []Verdict {
	return []Verdict{
		r.cpuVerdict(KeyMoatNone, "moat without plugins: CPU/request <= 1.5x the bare proxy", LimitNoPluginsCPU),
		r.cpuVerdict(KeyMoatDefault, "moat, default chain: CPU/request <= 2.5x the bare proxy", LimitDefaultCPU),
		r.peerVerdict(),
		r.firstByteVerdict(),
		r.rssVerdict(),
		r.loopVerdict(),
	}
}

// measured returns the measurement of key in c, or nil when missing.
func (r *Report) measured(key string, c Cell) *Measurement {
	t := r.Target(key)
	if t == nil || t.NA != "" {
		return nil
	}
	m := t.Cells[c]
	if m == nil || m.NA != "" || m.Result == nil || m.Result.OK == 0 {
		return nil
	}
	return m
}

func (r *Report) cpuVerdict(key, goal string, limit float64) Verdict {
	v := Verdict{Goal: goal, Status: NA}
	var parts []string
	worst := 0.0
	for _, c := range r.Cells {
		m, b := r.measured(key, c), r.measured(KeyBare, c)
		if m == nil || b == nil || b.CPUPerRequest() <= 0 {
			continue
		}
		ratio := float64(m.CPUPerRequest()) / float64(b.CPUPerRequest())
		worst = max(worst, ratio)
		parts = append(parts, fmt.Sprintf("%s %.2fx", c.short(), ratio))
	}
	if len(parts) == 0 {
		v.Detail = "not measured"
		return v
	}
	v.Detail = fmt.Sprintf("worst %.2fx (%s)", worst, strings.Join(parts, ", "))
	v.Status = passIf(worst <= limit)
	if v.Status == Miss {
		v.Detail += fmt.Sprintf("; over by %.0f%%", (worst/limit-1)*100)
	}
	return v
}

// peerVerdict compares CPU per request, not requests per second: on a
// small machine the load generator and the stand-in cap the throughput of
// every target (direct-to-stand-in itself is only a few times Portkey's).
func (r *Report) peerVerdict() Verdict {
	v := Verdict{Goal: "moat, default chain: CPU/request >= 5x cheaper than Portkey's gateway", Status: NA}
	p := r.Target(KeyPortkey)
	if p == nil {
		v.Detail = "Portkey not run (make bench-peers)"
		return v
	}
	if p.NA != "" {
		v.Detail = "Portkey unavailable: " + p.NA
		return v
	}
	var parts []string
	worst := -1.0
	for _, c := range r.Cells {
		m, pk := r.measured(KeyMoatDefault, c), r.measured(KeyPortkey, c)
		if m == nil || pk == nil || m.CPUPerRequest() <= 0 {
			continue
		}
		ratio := float64(pk.CPUPerRequest()) / float64(m.CPUPerRequest())
		if worst < 0 || ratio < worst {
			worst = ratio
		}
		parts = append(parts, fmt.Sprintf("%s %.1fx (%.3f vs %.3f ms)", c.short(), ratio, ms(m.CPUPerRequest()), ms(pk.CPUPerRequest())))
	}
	if len(parts) == 0 {
		v.Detail = "not measured"
		return v
	}
	v.Detail = strings.Join(parts, ", ")
	v.Status = passIf(worst >= LimitPeerCPU)
	return v
}

func (r *Report) firstByteVerdict() Verdict {
	v := Verdict{Goal: "streaming first byte <= +1 ms vs direct, default chain (incremental validators), concurrency 1", Status: NA}
	var parts []string
	status := ""
	for _, c := range r.Cells {
		if !c.Stream {
			continue
		}
		m, d := r.measured(KeyMoatDefault, c), r.measured(KeyDirect, c)
		if m == nil || d == nil {
			continue
		}
		added := Quantile(m.Result.TTFB, .5) - Quantile(d.Result.TTFB, .5)
		addedText := Quantile(m.Result.FirstText, .5) - Quantile(d.Result.FirstText, .5)
		part := fmt.Sprintf("%s %+.2f ms (first text %+.2f ms)", c.short(), ms(added), ms(addedText))
		if c.Concurrency == 1 {
			status = passIf(added <= LimitFirstByte)
		} else {
			part += " [info]"
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		v.Detail = "not measured"
		return v
	}
	v.Detail = strings.Join(parts, ", ")
	if status != "" {
		v.Status = status
	}
	return v
}

func (r *Report) rssVerdict() Verdict {
	v := Verdict{Goal: "peak RSS with all built-ins loaded <= 120 MB", Status: NA}
	t := r.Target(KeyMoatDefault)
	if t == nil || t.NA != "" || t.PeakRSS == 0 {
		v.Detail = "not measured"
		return v
	}
	v.Detail = fmt.Sprintf("%.1f MB (VmHWM of moat with the %d built-ins, after every cell)", mb(t.PeakRSS), len(AllBuiltins))
	v.Status = passIf(t.PeakRSS <= LimitRSS)
	return v
}

func (r *Report) loopVerdict() Verdict {
	v := Verdict{Goal: "a looping plugin raises the p99 of concurrent normal requests by <= 10%", Status: NA}
	l := r.Loop
	switch {
	case l == nil:
		v.Detail = "not run"
		return v
	case l.NA != "":
		v.Detail = l.NA
		return v
	case l.Without == nil || l.With == nil || l.Without.OK == 0 || l.With.OK == 0:
		v.Detail = "no normal request succeeded"
		return v
	}
	a, b := Quantile(l.Without.Latency, .99), Quantile(l.With.Latency, .99)
	growth := float64(b)/float64(a) - 1
	v.Detail = fmt.Sprintf("p99 %.2f ms alone, %.2f ms with looping requests (%+.1f%%); normal load %.0f req/s on %d workers; looping requests: %s; normal errors %d",
		ms(a), ms(b), growth*100, l.Rate, l.Concurrency, statusSummary(l.Hostile), l.With.Errors)
	if l.Control != nil && l.Control.OK > 0 {
		c := Quantile(l.Control.Latency, .99)
		v.Detail += fmt.Sprintf("; control (same CPU burnt by another process): %.2f ms (%+.1f%%)", ms(c), (float64(c)/float64(a)-1)*100)
	}
	v.Status = passIf(growth <= LimitLoopP99Growth && l.With.Errors == 0)
	return v
}

func passIf(ok bool) string {
	if ok {
		return Pass
	}
	return Miss
}

func (c Cell) short() string {
	if c.Stream {
		return fmt.Sprintf("stream c%d", c.Concurrency)
	}
	return fmt.Sprintf("json c%d", c.Concurrency)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// ratio formats v with its ratio to base ("(1.23x)"), or v alone.
func ratio(v, base float64, format string) string {
	s := fmt.Sprintf(format, v)
	if base > 0 && v > 0 {
		s += fmt.Sprintf(" (%.2fx)", v/base)
	}
	return s
}

// Print writes the table, the notes and the verdicts.
func (r *Report) Print(w io.Writer) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "moat side-by-side benchmark: %s per cell in %d interleaved rounds (every target in turn, round after round) after %s warm-up; 4 KiB English prompt, %d-byte reply; audit fsync %q; loopback only\n",
		o.Duration, max(1, o.Rounds), o.Warmup, len(ReplyText), o.AuditFSync)
	fmt.Fprintf(&b, "ratios in parentheses are to the bare reverse proxy; CPU is the target process's user+system time per successful request; RSS is its peak (VmHWM)\n")
	for _, c := range r.Cells {
		fmt.Fprintf(&b, "\n%s\n", c)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		head := "target\treq/s\tp50 ms\tp99 ms\t+p50 vs direct\tCPU ms/req\tpeak RSS MB"
		if c.Stream {
			head += "\tfirst byte p50 ms\tfirst text p50 ms"
		}
		fmt.Fprintln(tw, head+"\terrors")
		bare := r.measured(KeyBare, c)
		direct := r.measured(KeyDirect, c)
		var bRPS, bP50, bP99, bCPU, bRSS, bTTFB, bText float64
		if bare != nil {
			bRPS, bP50, bP99 = bare.Result.RPS(), ms(Quantile(bare.Result.Latency, .5)), ms(Quantile(bare.Result.Latency, .99))
			bCPU = ms(bare.CPUPerRequest())
			bRSS = mb(r.Target(KeyBare).PeakRSS)
			bTTFB, bText = ms(Quantile(bare.Result.TTFB, .5)), ms(Quantile(bare.Result.FirstText, .5))
		}
		for _, t := range r.Targets {
			if t.NA != "" {
				fmt.Fprintf(tw, "%s\tn/a: %s\n", t.Name, t.NA)
				continue
			}
			m := t.Cells[c]
			if m == nil || m.Result == nil {
				na := "n/a"
				if m != nil && m.NA != "" {
					na += ": " + m.NA
				}
				fmt.Fprintf(tw, "%s\t%s\n", t.Name, na)
				continue
			}
			res := m.Result
			if res.OK == 0 {
				fmt.Fprintf(tw, "%s\tn/a: %s\n", t.Name, m.NA)
				continue
			}
			p50 := Quantile(res.Latency, .5)
			added := "-"
			if direct != nil && t.Key != KeyDirect {
				added = fmt.Sprintf("%+.3f", ms(p50-Quantile(direct.Result.Latency, .5)))
			}
			cpu := "n/a"
			if m.NA == "" {
				cpu = ratio(ms(m.CPUPerRequest()), bCPU, "%.3f")
			}
			row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", t.Name,
				ratio(res.RPS(), bRPS, "%.0f"), ratio(ms(p50), bP50, "%.3f"), ratio(ms(Quantile(res.Latency, .99)), bP99, "%.3f"),
				added, cpu, ratio(mb(t.PeakRSS), bRSS, "%.1f"))
			if c.Stream {
				row += "\t" + ratio(ms(Quantile(res.TTFB, .5)), bTTFB, "%.3f") + "\t" + ratio(ms(Quantile(res.FirstText, .5)), bText, "%.3f")
			}
			fmt.Fprintf(tw, "%s\t%s\n", row, errorSummary(res))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if err := r.printCPUSummary(&b); err != nil {
		return err
	}
	if err := r.printPaced(&b); err != nil {
		return err
	}
	if l := r.Loop; l != nil && l.NA == "" && l.Without != nil && l.With != nil {
		pace := "back to back"
		if o.LoopRate > 0 {
			pace = fmt.Sprintf("%.1f req/s in all", o.LoopRate)
		}
		fmt.Fprintf(&b, "\nlooping plugin (second client whose input plugin never returns; deadline %s; %d workers on %d cores, %s, costing moat %.2f cores), normal requests paced at %.0f req/s on %d workers\n",
			o.LoopTimeout, l.Workers, l.Cores, pace, l.ExtraCores, l.Rate, l.Concurrency)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "normal requests\treq/s\tp50 ms\tp99 ms\terrors")
		for _, row := range []struct {
			name string
			res  *LoadResult
		}{{"alone", l.Without}, {"with looping requests", l.With}, {"control: same CPU burnt by another process", l.Control}} {
			if row.res == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%s\n", row.name, row.res.RPS(), ms(Quantile(row.res.Latency, .5)), ms(Quantile(row.res.Latency, .99)), errorSummary(row.res))
		}
		if h := l.Hostile; h != nil {
			fmt.Fprintf(tw, "looping requests\t%.1f\t\t\t%s\n", float64(h.OK+h.Errors)/h.Window.Seconds(), statusSummary(h))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	b.WriteString("\ntargets:\n")
	for _, v := range r.Verdicts() {
		fmt.Fprintf(&b, "  [%-4s] %s\n         %s\n", v.Status, v.Goal, v.Detail)
	}
	if r.Took > 0 {
		fmt.Fprintf(&b, "\ntotal time %s\n", r.Took.Round(time.Second))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printCPUSummary writes one line per target: its CPU per request in
// every cell, with the ratio to the bare proxy.
func (r *Report) printCPUSummary(b *strings.Builder) error {
	fmt.Fprintf(b, "\nCPU ms per request (ratio to the bare reverse proxy)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	head := "target"
	for _, c := range r.Cells {
		head += "\t" + c.short()
	}
	fmt.Fprintln(tw, head)
	for _, t := range r.Targets {
		row := t.Name
		for _, c := range r.Cells {
			m, bare := r.measured(t.Key, c), r.measured(KeyBare, c)
			switch {
			case m == nil || m.NA != "":
				row += "\tn/a"
			case bare == nil:
				row += fmt.Sprintf("\t%.3f", ms(m.CPUPerRequest()))
			default:
				row += "\t" + ratio(ms(m.CPUPerRequest()), ms(bare.CPUPerRequest()), "%.3f")
			}
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// printPaced writes the paced-upstream experiment.
func (r *Report) printPaced(b *strings.Builder) error {
	p := r.Paced
	if p == nil {
		return nil
	}
	if p.NA != "" {
		fmt.Fprintf(b, "\npaced upstream: n/a: %s\n", p.NA)
		return nil
	}
	fmt.Fprintf(b, "\npaced upstream (stand-in text deltas %s apart, %d streams at once): first text = first text_delta event received; lag = mean arrival of a byte of text, minus direct's\n", p.Delay, p.Concurrency)
	var direct *LoadResult
	for _, row := range p.Rows {
		if row.Key == KeyPacedDirect && row.Result != nil && row.Result.OK > 0 {
			direct = row.Result
		}
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tstreams\tfirst text p50 ms\t+ vs direct ms\tmean text lag ms\terrors")
	for _, row := range p.Rows {
		if row.NA != "" || row.Result == nil {
			fmt.Fprintf(tw, "%s\tn/a: %s\n", row.Name, row.NA)
			continue
		}
		res := row.Result
		if res.OK == 0 {
			fmt.Fprintf(tw, "%s\tn/a: %s\n", row.Name, errorSummary(res))
			continue
		}
		first := ms(Quantile(res.FirstText, .5))
		added, lag := "-", "-"
		if direct != nil && row.Key != KeyPacedDirect {
			added = fmt.Sprintf("%+.2f", first-ms(Quantile(direct.FirstText, .5)))
			lag = fmt.Sprintf("%+.2f", ms(meanDuration(res.MeanText)-meanDuration(direct.MeanText)))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\t%s\n", row.Name, res.OK, first, added, lag, errorSummary(res))
	}
	return tw.Flush()
}

// errorSummary is "0" or the failures by status with the first error.
func errorSummary(r *LoadResult) string {
	if r.Errors == 0 {
		return "0"
	}
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		if c != 200 {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%dx%d", r.Status[c], c)
	}
	return fmt.Sprintf("%d (%s; first: %s)", r.Errors, strings.Join(parts, " "), oneLine(r.FirstError))
}
