package plugincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/wasm"
)

const usage = `usage: moat plugin <command> [arguments]

commands:
  new NAME --lang go|as [--dir DIR] [--moat DIR]
                       write a ready-to-build plugin project with a test
  build [DIR]          build the project in DIR (default .) to NAME.wasm and
                       print its sha256 and the [[plugins]] block to paste
  test FILE.wasm --phase input|output --text TEXT [--config JSON]
                       run one request as the gateway would; print the verdict
  bench FILE.wasm [--size 4096] [--n 2000] [--phase input|output]
                       per-call latency percentiles against a no-op baseline
  verify FILE.wasm     check ABI v1 conformance, one line per check
  eval PLUGIN [--attacks FILE...] [--benign FILE...] [--labelled FILE.csv...]
       [--text-field NAME] [--label-column NAME]
       [--phase input|output] [--config JSON] [--runtime native|wasm]
                       share of attacks and of benign texts rejected, with
                       95% Wilson intervals, per file; PLUGIN is a built-in
                       name or a .wasm file; a FILE is a JSON array (strings
                       or objects), JSON lines (.jsonl) or CSV (.csv)
`

// errUsage marks a command-line mistake: Main prints the usage and returns 2.
var errUsage = errors.New("usage")

// Main runs `moat plugin` with args (the words after "plugin") and returns
// the process exit code: 0 on success, 1 on failure (or a failed check), 2
// on a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx := context.Background()
	var err error
	switch args[0] {
	case "new":
		err = cmdNew(args[1:], stdout, stderr)
	case "build":
		err = cmdBuild(ctx, args[1:], stdout, stderr)
	case "test":
		err = cmdTest(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, stderr)
	case "eval":
		err = cmdEval(ctx, args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "moat plugin: %v\n\n%s", err, usage)
		return 2
	case errors.Is(err, errChecksFailed):
		return 1
	default:
		fmt.Fprintf(stderr, "moat plugin %s: %v\n", args[0], err)
		return 1
	}
}

// parseArgs parses flags wherever they appear among the positional
// arguments ("test FILE --phase input" as well as "test --phase input FILE")
// and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("moat plugin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// cacheDir holds compiled modules across runs, so that only the first
// command on a module pays for compiling it (seconds for a Go guest). ""
// keeps them in memory. Tests point it at a temporary directory.
var cacheDir = defaultCacheDir()

func defaultCacheDir() string {
	if d := os.Getenv("MOAT_PLUGIN_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "moat", "wasm")
}

// defaultLimits are the sandbox limits of a plugin configured with no
// limits of its own.
func defaultLimits() (wasm.Limits, error) {
	return plan.DefaultPluginLimits()
}

// loadWasm reads a .wasm file and loads it into a new runtime with the
// default limits (or lim when not nil). The returned close function closes
// the plugin and the runtime.
func loadWasm(ctx context.Context, path string, lim *wasm.Limits) (*wasm.Plugin, func(), error) {
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading plugin: %w", err)
	}
	return loadCode(ctx, nameOf(path), code, lim)
}

func loadCode(ctx context.Context, name string, code []byte, lim *wasm.Limits) (*wasm.Plugin, func(), error) {
	l, err := defaultLimits()
	if err != nil {
		return nil, nil, err
	}
	if lim != nil {
		l = *lim
	}
	rt, err := wasm.NewRuntime(ctx, cacheDir, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("starting the plugin runtime: %w", err)
	}
	p, err := rt.Load(ctx, name, code, l)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	return p, func() { _ = rt.Close(ctx) }, nil
}

// nameOf derives a plugin name from a file path: its base name without
// the .wasm extension.
func nameOf(path string) string {
	base := path
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(base, ".wasm")
}
