// Command soak runs moat under a bounded mixed load and checks the
// aftermath (see package soak). It exits non-zero when any check fails.
//
//	go run ./host/tools/soak/cmd/soak --duration 60s [--concurrency 200] [--moat bin/moat]
//
// MOAT_TEST_REDIS_ADDR, when set, puts limits and budgets in that Redis
// server (database 15, emptied first).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/tools/soak"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 60*time.Second, "how long the load runs")
	conc := fs.Int("concurrency", 200, "clients sending at once")
	moat := fs.String("moat", "bin/moat", `moat binary to run as a child process ("" runs moat in this process)`)
	dir := fs.String("dir", "", "work directory (default: a temporary one)")
	keep := fs.Bool("keep", false, "keep the temporary work directory")
	seed := fs.Uint64("seed", 0, "seed of the request mix (0 picks one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *moat != "" {
		if _, err := os.Stat(*moat); err != nil {
			fmt.Fprintf(stderr, "soak: %v (build it with `make build`, or pass --moat \"\" to run moat in-process)\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, soak.Options{
		Duration:    *duration,
		Concurrency: *conc,
		Moat:        *moat,
		RedisAddr:   os.Getenv("MOAT_TEST_REDIS_ADDR"),
		Dir:         *dir,
		Keep:        *keep,
		Seed:        *seed,
		Progress:    stderr,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep.Print(stdout)
	if !rep.OK() {
		return 1
	}
	return 0
}
