package plugincli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moat-gateway/moat/plugins/injection"
	"github.com/moat-gateway/moat/sdk/abi"
)

// judgeFunc runs one request through a plugin, native or sandboxed.
type judgeFunc func(ctx context.Context, req *abi.Request) (abi.Verdict, error)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// loadTexts reads an evaluation set (see injection.LoadTexts), naming the
// file in errors.
func loadTexts(path string) ([]string, error) {
	texts, err := injection.LoadTexts(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return texts, nil
}

// tally counts verdicts over a set of texts.
type tally struct {
	total, rejected, modified, errors int
}

func (t tally) share(n int) float64 {
	if t.total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(t.total)
}

// run judges every text. A plugin error counts as a rejection, as the
// gateway's default on_error = "reject" would make it.
func (t *tally) run(ctx context.Context, judge judgeFunc, phase abi.Phase, cfg []byte, texts []string) {
	for _, s := range texts {
		t.total++
		v, err := judge(ctx, &abi.Request{Phase: phase, Text: s, Config: cfg})
		switch {
		case err != nil:
			t.errors++
			t.rejected++
		case v.Action == abi.Reject:
			t.rejected++
		case v.Action == abi.Modify:
			t.modified++
		}
	}
}

func (t tally) line(w io.Writer, label string) {
	fmt.Fprintf(w, "%s: rejected %d/%d (%.1f%%), modified %d (%.1f%%)", label, t.rejected, t.total, t.share(t.rejected), t.modified, t.share(t.modified))
	if t.errors > 0 {
		fmt.Fprintf(w, ", %d plugin errors counted as rejected", t.errors)
	}
	fmt.Fprintln(w)
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	attacks := fs.String("attacks", "", "JSON array of attack texts")
	var benign stringList
	fs.Var(&benign, "benign", "JSON array of benign texts or {\"prompt\":...} objects (repeatable)")
	phaseFlag := fs.String("phase", "input", "phase: input or output")
	cfgFlag := fs.String("config", "", "the plugin's config as a JSON object")
	runtime := fs.String("runtime", "native", "for a built-in: native (in-process, the default) or wasm (its embedded module)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("%w: eval takes a PLUGIN (a built-in name or a .wasm file)", errUsage)
	}
	// Words after the plugin are more benign files: --benign a.json b.json.
	benign = append(benign, pos[1:]...)
	if *attacks == "" && len(benign) == 0 {
		return fmt.Errorf("%w: eval needs --attacks FILE and/or --benign FILE", errUsage)
	}
	phase, err := parsePhase(*phaseFlag)
	if err != nil {
		return err
	}
	cfg, err := parseConfig(*cfgFlag)
	if err != nil {
		return err
	}
	judge, how, closeFn, err := resolvePlugin(ctx, pos[0], phase, *runtime)
	if err != nil {
		return err
	}
	defer closeFn()
	fmt.Fprintf(stdout, "%s (%s), %s phase\n", pos[0], how, phase)
	if *attacks != "" {
		texts, err := loadTexts(*attacks)
		if err != nil {
			return err
		}
		var t tally
		t.run(ctx, judge, phase, cfg, texts)
		t.line(stdout, "attacks "+*attacks)
	}
	var all tally
	for _, f := range benign {
		texts, err := loadTexts(f)
		if err != nil {
			return err
		}
		var t tally
		t.run(ctx, judge, phase, cfg, texts)
		t.line(stdout, "benign "+f)
		all.total += t.total
		all.rejected += t.rejected
		all.modified += t.modified
		all.errors += t.errors
	}
	if len(benign) > 1 {
		all.line(stdout, "benign, all files")
	}
	return nil
}

// errUnknownPlugin is returned for a PLUGIN that is neither a file nor a
// built-in.
var errUnknownPlugin = errors.New("unknown plugin")

// resolvePlugin finds PLUGIN: a .wasm file (run in the sandbox) or a
// built-in (run natively, or in the sandbox when it only ships as a module).
func resolvePlugin(ctx context.Context, name string, phase abi.Phase, runtime string) (judgeFunc, string, func(), error) {
	if strings.HasSuffix(name, ".wasm") || strings.ContainsAny(name, `/\`) {
		p, closeRT, err := loadWasm(ctx, name, nil)
		if err != nil {
			return nil, "", nil, err
		}
		if !p.HasPhase(phase) {
			closeRT()
			return nil, "", nil, fmt.Errorf("plugin %s has no %s hook", name, phase)
		}
		return p.Call, "wasm", closeRT, nil
	}
	return resolveBuiltin(ctx, name, phase, runtime)
}
