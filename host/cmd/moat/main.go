// Command moat is the gateway between applications and the Anthropic API.
//
//	moat serve [--config FILE]         run the gateway (default config.toml)
//	moat demo [--config FILE]          run it against a built-in stand-in for Claude
//	moat config check [FILE]           validate a config; non-zero exit on problems
//	moat keys new --client NAME        create a client key; prints it once with its config hash
//	moat plugin new|build|test|bench|verify|eval ...
//	moat audit verify [--config FILE]  check the keyed audit chain and its checkpoint
//	moat doctor [--config FILE] [--probe]  run the production checklist
//	moat scan PATH...                  look for Anthropic keys in front-end bundles
//	moat reload [--config FILE]        ask a running moat to reload its config
//	moat standin [--listen ADDR]       run only the Claude API stand-in
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/doctor"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/plugincli"
	"github.com/moat-gateway/moat/host/internal/scan"
	"github.com/moat-gateway/moat/host/internal/server"
	"github.com/moat-gateway/moat/host/tools/standin"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: moat <command> [arguments]

commands:
  serve [--config FILE]        run the gateway (default config.toml)
  demo [--config FILE]         run the gateway against a built-in stand-in for Claude (no key needed)
  config check [FILE]          validate a config file
  keys new --client NAME       create a client key (printed once) and its config snippet
  plugin SUBCOMMAND            new, build, test, bench, verify, eval (moat plugin help)
  audit verify [--config FILE] verify the keyed audit chain against its checkpoint
  doctor [--config FILE] [--probe]  run the production checklist (--probe: ask the upstream whether it accepts the key)
  scan PATH...                 find Anthropic keys in files (front-end bundles, binaries)
  reload [--config FILE]       reload a running moat's config through its admin listener
  standin [--listen ADDR]      run only the Claude API stand-in
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest, stdout, stderr, false)
	case "demo":
		return cmdServe(rest, stdout, stderr, true)
	case "config":
		return cmdConfig(rest, stdout, stderr)
	case "keys":
		return cmdKeys(rest, stdout, stderr)
	case "plugin":
		return plugincli.Main(rest, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "doctor":
		return cmdDoctor(rest, stdout, stderr)
	case "scan":
		return cmdScan(rest, stdout, stderr)
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "standin":
		return cmdStandin(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "moat: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "config.toml", "config file")
}

// loadConfigFlag parses [--config FILE] and loads the config. On failure it
// returns nil and the exit code (2 for usage, 1 for a bad config).
func loadConfigFlag(name string, args []string, stderr io.Writer) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return cfg, 0
}

func cmdServe(args []string, stdout, stderr io.Writer, demo bool) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	// Components that log through the default logger (plugin loading) log
	// the same JSON lines.
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := server.Options{ConfigPath: *path, Stdout: stdout, Logger: logger}
	if demo {
		var b [16]byte
		_, _ = rand.Read(b[:])
		demoKey := "demo-" + hex.EncodeToString(b[:])
		si := standin.New(standin.Options{APIKey: demoKey})
		if err := si.Start("127.0.0.1:0"); err != nil {
			fmt.Fprintf(stderr, "moat demo: starting the Claude stand-in: %v\n", err)
			return 1
		}
		defer si.Close()
		fmt.Fprintf(stdout, "moat demo: a local stand-in for the Claude API is answering at %s (replies are canned; no real key is used)\n", si.URL())
		opts.Override = func(c *config.Config) {
			c.Upstream.BaseURL = si.URL()
			c.Upstream.APIKeyFile = ""
			c.Upstream.APIKeyEnv = "MOAT_DEMO_UPSTREAM_KEY"
		}
		os.Setenv("MOAT_DEMO_UPSTREAM_KEY", demoKey)
	}
	if err := server.Run(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "moat: %v\n", err)
		return 1
	}
	return 0
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: moat config check [FILE]")
		return 2
	}
	path := "config.toml"
	if len(args) > 1 {
		path = args[1]
	}
	if _, err := server.CheckFile(context.Background(), path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: moat keys new --client NAME")
		return 2
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := fs.String("client", "", "client id")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *client == "" {
		fmt.Fprintln(stderr, "moat keys new: --client is required")
		return 2
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		fmt.Fprintf(stderr, "moat keys new: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Key for client %q (shown once; moat stores only its hash):\n\n    %s\n\nAdd to config.toml:\n\n[[clients]]\nid = %q\nkey_sha256 = %q\n", *client, key, *client, hash)
	return 0
}

const auditUsage = `usage:
  moat audit verify [--config FILE] [--from-seq N] [--checkpoint SEQ:HEAD]... [FILE...]
      check the trail of the config's audit.path (or FILE..., in chain order)
      with the chain key, and against the latest checkpoint; exit 1 on any
      problem (edited, cut head or tail, forged, old unkeyed format only)
  moat audit checkpoint [--config FILE] [--from-seq N]
      after moat refused to start on a lost or mismatched checkpoint and you
      know why: verify the chain and write a checkpoint for its current end
`

func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "checkpoint") {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	fromSeq := fs.Uint64("from-seq", 0, "accept a trail starting at this seq (older records removed on purpose)")
	var expect []audit.SourcedCheckpoint
	fs.Func("checkpoint", "also check SEQ:HEADPREFIX (from the metrics page's audit_checkpoint_seq and audit_checkpoint_head_prefix as =DECIMAL); repeatable", func(v string) error {
		cp, err := audit.ParseExpect(v)
		expect = append(expect, cp)
		return err
	})
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	o := audit.TrailOptions{Files: fs.Args(), FromSeq: *fromSeq, Expect: expect}
	rs, err := plan.CheckpointRedis(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "moat audit %s: %v\n", args[0], err)
		return 1
	}
	if rs != nil {
		defer rs.Client.Close()
		o.Stores = append(o.Stores, rs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if args[0] == "checkpoint" {
		if len(o.Files) > 0 {
			fmt.Fprintln(stderr, "moat audit checkpoint: takes no FILE arguments (it seals the trail at audit.path)")
			return 2
		}
		cp, rep, err := audit.Reseal(ctx, plan.Audit(cfg.Audit), o)
		if err != nil {
			audit.WriteReport(stdout, rep, err)
			return 1
		}
		fmt.Fprintf(stdout, "checkpoint written: seq %d, head %s; records cut before now can no longer be detected\n", cp.Seq, cp.Head)
		return 0
	}
	rep, err := audit.VerifyTrail(ctx, plan.Audit(cfg.Audit), o)
	audit.WriteReport(stdout, rep, err)
	if err != nil || !rep.OK() {
		return 1
	}
	return 0
}

func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	probe := fs.Bool("probe", false, "also ask the upstream whether it accepts the key (one GET /v1/models?limit=1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	results := doctor.Run(cfg, os.Getenv)
	if *probe {
		results = append(results, doctor.Probe(context.Background(), cfg, os.Getenv, nil))
	}
	if failed := doctor.Print(stdout, results); failed {
		return 1
	}
	return 0
}

func cmdScan(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: moat scan PATH...")
		return 2
	}
	findings, err := scan.Scan(args)
	leaks := 0
	for _, f := range findings {
		fmt.Fprintln(stdout, f.String())
		if f.Leak() {
			leaks++
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "moat scan: %v\n", err)
	}
	if leaks > 0 {
		fmt.Fprintf(stdout, "%d finding(s): an Anthropic key must never ship to a client; keep it in moat and rotate any key found here\n", leaks)
		return 1
	}
	if err != nil {
		return 1
	}
	fmt.Fprintln(stdout, "no Anthropic keys found")
	return 0
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadConfigFlag("reload", args, stderr)
	if cfg == nil {
		return code
	}
	if cfg.Admin.Listen == "" {
		fmt.Fprintln(stderr, "moat reload: [admin] listen is not set; send SIGHUP to the moat process instead")
		return 1
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+cfg.Admin.Listen+"/admin/reload", nil)
	req.Header.Set("Authorization", "Bearer "+os.Getenv(cfg.Admin.TokenEnv))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "moat reload: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func cmdStandin(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:8090", "address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := standin.Main(ctx, *addr, stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "moat standin: %v\n", err)
		return 1
	}
	return 0
}
