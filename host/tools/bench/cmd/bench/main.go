// Command bench runs moat's side-by-side performance benchmark and prints
// one table (see package bench). Run it from the repository after
// `make build`:
//
//	go run ./host/tools/bench/cmd/bench [--peers] [--duration 10s] [--concurrency 1,32]
//
// BENCH_DURATION and BENCH_CONCURRENCY set the defaults of --duration and
// --concurrency. The driver re-executes itself with a hidden --role flag for
// the stand-in and the bare proxy, so each runs in its own process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/tools/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) >= 2 && args[0] == "--role" {
		if err := bench.RunRole(ctx, args[1], args[2:], stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	peers := fs.Bool("peers", false, "add Portkey's gateway (npm ci into host/tools/bench/peers/portkey when needed)")
	defDuration, err := envDuration("BENCH_DURATION", 10*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	duration := fs.Duration("duration", defDuration, "measured time per cell (env BENCH_DURATION)")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up per cell")
	rounds := fs.Int("rounds", 3, "interleaved rounds: each cell's time is split into that many slices, run target after target, round after round")
	conc := fs.String("concurrency", envString("BENCH_CONCURRENCY", "1,32"), "comma-separated worker counts (env BENCH_CONCURRENCY)")
	targets := fs.String("targets", "", "comma-separated subset of: direct,bare,moat-none,moat-default,moat-user,portkey,moat-loop")
	noLoop := fs.Bool("no-loop", false, "skip the looping-plugin experiment")
	loopRate := fs.Float64("loop-rate", 0, "looping-plugin requests per second in all (0: back to back)")
	loopWorkers := fs.Int("loop-workers", 0, "workers calling the looping plugin (default twice the cores plus one)")
	noPaced := fs.Bool("no-paced", false, "skip the paced-upstream experiment")
	pacedDelay := fs.Duration("paced-delay", 50*time.Millisecond, "the paced stand-in's pause between text deltas")
	loopTimeout := fs.Duration("loop-timeout", 100*time.Millisecond, "the looping plugin's deadline (timeout_ms)")
	loopLoad := fs.Float64("loop-load", 0.15, "normal load during the looping experiment, as a fraction of moat's measured req/s")
	fsync := fs.String("audit-fsync", "every", "moat's [audit] fsync")
	profile := fs.Bool("profile", false, "save CPU profiles of each moat target (highest-concurrency cells) in the work dir")
	moatBin := fs.String("moat", "", "the moat binary (default bin/moat)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	concs, err := parseInts(*conc)
	if err != nil {
		fmt.Fprintf(stderr, "bench: --concurrency: %v\n", err)
		return 2
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bench: finding this binary: %v\n", err)
		return 1
	}
	opts := bench.Options{
		Root: root, Self: []string{self}, MoatBin: *moatBin, Peers: *peers,
		Duration: *duration, Warmup: *warmup, Rounds: *rounds, Concurrency: concs,
		SkipLoop: *noLoop, LoopRate: *loopRate, LoopWorkers: *loopWorkers, LoopTimeout: *loopTimeout, LoopLoad: *loopLoad,
		SkipPaced: *noPaced, PacedDelay: *pacedDelay,
		AuditFSync: *fsync, Profile: *profile, Progress: stderr,
	}
	if *quiet {
		opts.Progress = io.Discard
	}
	if *targets != "" {
		opts.Targets = strings.Split(*targets, ",")
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "bench: interrupted; every process it started was stopped")
			return 130
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if err := rep.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 10s", name, v)
	}
	return d, nil
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers separated by commas, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// repoRoot walks up from the working directory to the go.mod of moat.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/moat-gateway/moat") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository: no moat go.mod above the working directory; run from the repository")
		}
		dir = parent
	}
}
