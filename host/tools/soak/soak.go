package soak

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// redisDB is the Redis database a soak owns and empties before it starts.
const redisDB = 15

// Options configure a soak run. The zero value is not usable: Duration and
// Concurrency must be positive.
type Options struct {
	// Duration is how long the load runs.
	Duration time.Duration
	// Concurrency is the number of clients sending at once.
	Concurrency int
	// Moat is the moat binary to run as a child process; "" runs moat's
	// server in this process instead.
	Moat string
	// RedisAddr, when set, puts limits and budgets in that Redis server
	// (database 15, emptied first); otherwise the memory store is used.
	RedisAddr string
	// Dir is the working directory (config, audit log, moat's log); ""
	// makes a temporary one, removed afterwards unless Keep.
	Dir  string
	Keep bool
	// FaultRate, LoopRate, NoisyRate and SpenderRate are the fractions of
	// requests that inject an upstream fault, make the hostile plugin
	// loop, come from the rate-limited client, and come from the user
	// with a small budget. Zero means 1%, 1%, 8% and 5%.
	FaultRate, LoopRate, NoisyRate, SpenderRate float64
	// Seed makes the request mix reproducible; 0 picks one.
	Seed uint64
	// Progress, when set, receives a line about what the run is doing.
	Progress io.Writer
}

// Report is what a soak run found. Problems is empty when every check held.
type Report struct {
	Duration    time.Duration
	Concurrency int
	Moat        string
	Store       string
	Seed        uint64
	Dir         string

	Sent     int
	Streams  int
	Outcomes map[Outcome]int
	// Samples are up to 20 unexpected failures.
	Samples []string
	// MeanLatency is the mean time per request, client side.
	MeanLatency time.Duration

	AuditLines  int
	AuditVerify string

	AuditUSD, SettledUSD, ReservedUSD float64
	SpenderUSD, SpenderLimit          float64
	NoisyAdmitted, NoisyMax           int

	RSSStart, RSSEnd               float64
	GoroutinesStart, GoroutinesEnd float64

	Problems []string
}

// OK reports whether every check held.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "soak: %v at concurrency %d, moat %s, %s store, seed %d\n", r.Duration.Round(time.Millisecond), r.Concurrency, r.Moat, r.Store, r.Seed)
	fmt.Fprintf(w, "  requests sent            %d (%d streaming), mean latency %v\n", r.Sent, r.Streams, r.MeanLatency.Round(time.Microsecond))
	for _, o := range Outcomes {
		fmt.Fprintf(w, "    %-28s %d\n", o, r.Outcomes[o])
	}
	fmt.Fprintf(w, "  audit lines              %d\n", r.AuditLines)
	fmt.Fprintf(w, "  audit verify             %s\n", r.AuditVerify)
	fmt.Fprintf(w, "  spend                    audit $%.6f, settled $%.6f, still reserved $%.6f\n", r.AuditUSD, r.SettledUSD, r.ReservedUSD)
	fmt.Fprintf(w, "  budget (user spender)    spent $%.6f of $%.6f\n", r.SpenderUSD, r.SpenderLimit)
	fmt.Fprintf(w, "  rate (client noisy)      admitted %d, at most %d allowed\n", r.NoisyAdmitted, r.NoisyMax)
	fmt.Fprintf(w, "  moat RSS                 %.1f MiB -> %.1f MiB\n", r.RSSStart/(1<<20), r.RSSEnd/(1<<20))
	fmt.Fprintf(w, "  moat goroutines          %.0f -> %.0f\n", r.GoroutinesStart, r.GoroutinesEnd)
	for _, s := range r.Samples {
		fmt.Fprintf(w, "  unexpected: %s\n", s)
	}
	if r.OK() {
		fmt.Fprintf(w, "soak: OK\n")
		return
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
	fmt.Fprintf(w, "soak: FAILED (%d problems; work dir %s)\n", len(r.Problems), r.Dir)
}

// Run starts a stand-in and moat, sends the load for opts.Duration, and
// checks the aftermath. The error is for a run that could not happen; a
// run that found problems returns them in the Report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Duration <= 0 || opts.Concurrency <= 0 {
		return nil, errors.New("soak: duration and concurrency must be positive")
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.FaultRate, 0.01)
	def(&opts.LoopRate, 0.01)
	def(&opts.NoisyRate, 0.08)
	def(&opts.SpenderRate, 0.05)
	if opts.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.Seed = binary.LittleEndian.Uint64(b[:]) >> 12 // fits a float64 exactly when printed
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "soak: "+format+"\n", args...)
		}
	}
	rep := &Report{Duration: opts.Duration, Concurrency: opts.Concurrency, Moat: "in-process", Store: "memory", Seed: opts.Seed, Outcomes: map[Outcome]int{}}
	if opts.Moat != "" {
		rep.Moat = opts.Moat
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "moat-soak-")
		if err != nil {
			return nil, fmt.Errorf("soak: making a work dir: %w", err)
		}
		dir = d
		if !opts.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("soak: making the work dir: %w", err)
	}
	rep.Dir = dir

	// The stand-in for Claude.
	upKey := "soak-upstream-" + randHex(16)
	si := standin.New(standin.Options{APIKey: upKey, MaxRecorded: -1})
	if err := si.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("soak: starting the stand-in: %w", err)
	}
	defer si.Close()
	si.SetReply("Soak reply: the gateway relayed this answer intact, in order, and on time. Nothing to add.")

	s := &setup{dir: dir, adminTok: "soak-admin-" + randHex(16)}
	if opts.RedisAddr != "" {
		if err := flushRedis(ctx, opts.RedisAddr); err != nil {
			return nil, err
		}
		s.redisURL = fmt.Sprintf("redis://%s/%d", opts.RedisAddr, redisDB)
		rep.Store = "redis " + opts.RedisAddr
	}
	var appHash, noisyHash string
	var err error
	if s.appKey, appHash, err = auth.NewKey(); err != nil {
		return nil, fmt.Errorf("soak: making a client key: %w", err)
	}
	if s.noisyKey, noisyHash, err = auth.NewKey(); err != nil {
		return nil, fmt.Errorf("soak: making a client key: %w", err)
	}
	if err := s.writeConfig(si.URL(), upKey, appHash, noisyHash); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}

	logPath := dir + "/moat.log"
	var m *moatProc
	if opts.Moat != "" {
		m, err = startProcess(ctx, opts.Moat, s, logPath)
	} else {
		m, err = startInProcess(ctx, s, logPath)
	}
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = m.stop()
		}
	}()
	progress("moat (pid %d) on %s, admin %s; load for %v at concurrency %d", m.pid, m.public, m.admin, opts.Duration, opts.Concurrency)

	tr := &http.Transport{MaxIdleConns: opts.Concurrency, MaxIdleConnsPerHost: opts.Concurrency, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	adm := &admin{base: "http://" + m.admin, token: s.adminTok, hc: &http.Client{Timeout: 10 * time.Second}}
	l := &loader{url: "http://" + m.public, appKey: s.appKey, noisyKey: s.noisyKey, hc: hc, tally: newTally(),
		faultRate: opts.FaultRate, loopRate: opts.LoopRate, noisyRate: opts.NoisyRate, spenderRate: opts.SpenderRate}

	// Warm up at full concurrency (pools, compiled plugins, keep-alive
	// connections), then take the baseline, then the rest of the run.
	start := time.Now()
	warm := min(opts.Duration/5, 3*time.Second)
	loadCtx, cancelLoad := context.WithDeadline(ctx, start.Add(opts.Duration))
	defer cancelLoad()
	loadDone := make(chan struct{})
	go func() { l.run(loadCtx, opts.Concurrency, opts.Seed); close(loadDone) }()
	select {
	case <-time.After(warm):
	case <-loadDone:
	}
	m0, err := adm.metrics()
	if err != nil {
		rep.problem("reading moat's metrics at the start: %v", err)
	}
	rep.RSSStart, rep.GoroutinesStart = m0["process_resident_memory_bytes"], m0["go_goroutines"]
	<-loadDone
	elapsed := time.Since(start)
	tr.CloseIdleConnections()
	progress("load done after %v: %d requests; checking", elapsed.Round(time.Millisecond), l.tally.sent)

	l.tally.mu.Lock()
	t := l.tally
	rep.Sent, rep.Streams, rep.Samples = t.sent, t.streams, t.samples
	for o, n := range t.counts {
		rep.Outcomes[o] = n
	}
	if t.sent > 0 {
		rep.MeanLatency = t.latencySum / time.Duration(t.sent)
	}
	ids := t.ids
	l.tally.mu.Unlock()
	if rep.Sent == 0 {
		rep.problem("no request was sent")
	}
	if n := rep.Outcomes[OutcomeUnexpected]; n > 0 {
		rep.problem("%d unexpected failures", n)
	}
	if t.noIDs > 0 {
		rep.problem("%d answers without an x-moat-request-id header", t.noIDs)
	}
	for id, n := range ids {
		if n > 1 {
			rep.problem("request id %s answered %d times", id, n)
			break
		}
	}

	// Budgets: reservations released, spend within the limits.
	var budgets []budgetReport
	deadline := time.Now().Add(15 * time.Second)
	for {
		budgets, err = adm.budgets()
		if err != nil || reserved(budgets) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		rep.problem("reading /admin/usage: %v", err)
	}
	rep.ReservedUSD = reserved(budgets)
	if rep.ReservedUSD != 0 {
		rep.problem("$%.6f still reserved after the load ended", rep.ReservedUSD)
	}
	for _, b := range budgets {
		switch {
		case b.Scope == "global":
			rep.SettledUSD = b.USDSpent
		case b.Scope == "user" && b.Subject == "spender":
			rep.SpenderUSD, rep.SpenderLimit = b.USDSpent, b.USDLimit
		}
		if b.USDLimit > 0 && b.USDSpent > b.USDLimit+1e-9 {
			rep.problem("budget %s/%s spent $%.6f, over its $%.6f", b.Scope, b.Subject, b.USDSpent, b.USDLimit)
		}
	}
	if rep.SpenderLimit == 0 {
		rep.SpenderLimit = spenderUSD
	}

	// The rate: admitted noisy calls within what the windows allow.
	windows := int(math.Ceil(float64(elapsed)/float64(noisyRatePeriod))) + 1
	rep.NoisyAdmitted, rep.NoisyMax = t.noisyPass, noisyRate*windows
	if rep.NoisyAdmitted > rep.NoisyMax {
		rep.problem("client noisy was admitted %d times; its rate allows at most %d in %v", rep.NoisyAdmitted, rep.NoisyMax, elapsed.Round(time.Millisecond))
	}

	// Goroutines and memory, once moat has settled.
	var m1 map[string]float64
	deadline = time.Now().Add(15 * time.Second)
	for {
		m1, err = adm.metrics()
		if err != nil || m1["go_goroutines"] <= rep.GoroutinesStart+20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		rep.problem("reading moat's metrics at the end: %v", err)
	}
	rep.RSSEnd, rep.GoroutinesEnd = m1["process_resident_memory_bytes"], m1["go_goroutines"]
	if rep.GoroutinesEnd > rep.GoroutinesStart+20 {
		rep.problem("moat has %.0f goroutines after the load, %.0f during warm-up: goroutines left behind", rep.GoroutinesEnd, rep.GoroutinesStart)
	}
	if rep.RSSStart > 0 && rep.RSSEnd > 2*rep.RSSStart+256<<20 {
		rep.problem("moat's RSS grew from %.1f MiB to %.1f MiB", rep.RSSStart/(1<<20), rep.RSSEnd/(1<<20))
	}

	// Stop moat so the audit log is complete and closed, then check it.
	stopped = true
	if err := m.stop(); err != nil {
		rep.problem("stopping moat: %v", err)
	}
	checkAudit(rep, s.cfgPath, s.auditPath, ids)
	return rep, nil
}

// checkAudit checks one valid line per request, the hash chain, and that
// the audited cost is the settled spend.
func checkAudit(rep *Report, cfgPath, path string, ids map[string]int) {
	files, err := audit.Files(path)
	if err != nil || len(files) == 0 {
		rep.problem("listing the audit files: %v", err)
		rep.AuditVerify = "not run"
		return
	}
	seen := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			rep.problem("reading the audit log: %v", err)
			return
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			rep.AuditLines++
			var rec audit.Record
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.RequestID == "" || rec.Decision == "" || rec.Status == 0 {
				rep.problem("audit line %d of %s is not a valid record (%v)", rep.AuditLines, f, err)
				continue
			}
			seen[rec.RequestID]++
			rep.AuditUSD += rec.CostUSD
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			rep.problem("reading %s: %v", f, err)
		}
	}
	if rep.AuditLines != rep.Sent {
		rep.problem("%d audit lines for %d requests", rep.AuditLines, rep.Sent)
	}
	missing, extra, dup := 0, 0, 0
	for id := range ids {
		if seen[id] == 0 {
			missing++
		}
	}
	for id, n := range seen {
		if n > 1 {
			dup++
		}
		if ids[id] == 0 {
			extra++
		}
	}
	if missing+extra+dup > 0 {
		rep.problem("audit ids: %d requests without a line, %d lines for no request seen, %d ids on several lines", missing, extra, dup)
	}
	if math.Abs(rep.AuditUSD-rep.SettledUSD) > 1e-6 {
		rep.problem("audited cost $%.9f != settled spend $%.9f", rep.AuditUSD, rep.SettledUSD)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		rep.problem("audit verify: %v", err)
		return
	}
	v, err := audit.VerifyTrail(context.Background(), plan.Audit(cfg.Audit), audit.TrailOptions{})
	switch {
	case err != nil:
		rep.AuditVerify = "FAILED: " + err.Error()
		rep.problem("audit verify: %v", err)
	case !v.OK():
		rep.AuditVerify = "FAILED: " + v.Problem.String()
		rep.problem("audit verify: %s", v.Problem)
	default:
		rep.AuditVerify = fmt.Sprintf("ok (%d records, seq %d..%d, %d file(s))", v.Records, v.FirstSeq, v.LastSeq, len(files))
		if v.Records != rep.AuditLines {
			rep.problem("audit verify read %d records, %d lines counted", v.Records, rep.AuditLines)
		}
	}
}

// admin reads moat's admin listener.
type admin struct {
	base, token string
	hc          *http.Client
}

// budgetReport is one budget of GET /admin/usage.
type budgetReport struct {
	Scope       string  `json:"scope"`
	Subject     string  `json:"subject"`
	USDLimit    float64 `json:"usd_limit"`
	USDSpent    float64 `json:"usd_spent"`
	USDReserved float64 `json:"usd_reserved"`
}

func reserved(bs []budgetReport) float64 {
	sum := 0.0
	for _, b := range bs {
		sum += b.USDReserved
	}
	return sum
}

func (a *admin) budgets() ([]budgetReport, error) {
	req, err := http.NewRequest(http.MethodGet, a.base+"/admin/usage", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /admin/usage: status %d", resp.StatusCode)
	}
	var rep struct {
		Budgets []budgetReport `json:"budgets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("decoding /admin/usage: %w", err)
	}
	return rep.Budgets, nil
}

// metrics returns the unlabelled samples of GET /metrics.
func (a *admin) metrics() (map[string]float64, error) {
	resp, err := a.hc.Get(a.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			out[name] = v
		}
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := out[k]; !ok {
			return out, fmt.Errorf("/metrics has no %s", k)
		}
	}
	return out, sc.Err()
}

// flushRedis empties the soak's Redis database.
func flushRedis(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DB: redisDB})
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("soak: emptying redis database %d at %s: %w", redisDB, addr, err)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
