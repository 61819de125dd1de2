package plugincli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/moat-gateway/moat/sdk/abi"
)

// judgeFunc runs one request through a plugin, native or sandboxed.
type judgeFunc func(ctx context.Context, req *abi.Request) (abi.Verdict, error)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

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

func (t *tally) add(o tally) {
	t.total += o.total
	t.rejected += o.rejected
	t.modified += o.modified
	t.errors += o.errors
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
	lo, hi := wilson(t.rejected, t.total)
	fmt.Fprintf(w, "%s: rejected %d/%d (%.1f%%, 95%% CI %.1f-%.1f%%), modified %d (%.1f%%)", label, t.rejected, t.total, t.share(t.rejected), 100*lo, 100*hi, t.modified, t.share(t.modified))
	if t.errors > 0 {
		fmt.Fprintf(w, ", %d plugin errors counted as rejected", t.errors)
	}
	fmt.Fprintln(w)
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	var attacks, benign, labelledFiles stringList
	fs.Var(&attacks, "attacks", "attack texts: a JSON array (strings or objects), JSON lines (.jsonl) or CSV (.csv) (repeatable)")
	fs.Var(&benign, "benign", "benign texts, in the same formats as --attacks (repeatable)")
	fs.Var(&labelledFiles, "labelled", "a CSV file whose --label-column says which rows are attacks (repeatable)")
	textField := fs.String("text-field", "", "the text's field in JSON objects and JSON lines, or its column in CSV (default \"prompt\" or \"text\")")
	labelColumn := fs.String("label-column", "label", "the label column of --labelled CSV files: 1/true/attack/injection or 0/false/benign")
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
	if len(attacks)+len(benign)+len(labelledFiles) == 0 {
		return fmt.Errorf("%w: eval needs --attacks FILE, --benign FILE or --labelled FILE", errUsage)
	}
	if *labelColumn == "" {
		return fmt.Errorf("%w: --label-column must not be empty", errUsage)
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
	format := setFormat{textField: *textField}
	var allAttacks, allBenign tally
	nAttacks, nBenign := 0, 0
	judgeSet := func(label, path string, texts []string, sum *tally, n *int) {
		var t tally
		t.run(ctx, judge, phase, cfg, texts)
		t.line(stdout, label+" "+path)
		sum.add(t)
		*n++
	}
	for _, f := range attacks {
		set, err := readSet(f, true, format)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		judgeSet("attacks", f, set.attacks, &allAttacks, &nAttacks)
	}
	for _, f := range benign {
		set, err := readSet(f, false, format)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		judgeSet("benign", f, set.benign, &allBenign, &nBenign)
	}
	for _, f := range labelledFiles {
		lf := format
		lf.labelColumn = *labelColumn
		if !strings.EqualFold(filepath.Ext(f), ".csv") {
			return fmt.Errorf("%w: --labelled takes a .csv file, got %s", errUsage, f)
		}
		set, err := readSet(f, false, lf)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		judgeSet("attacks", f, set.attacks, &allAttacks, &nAttacks)
		judgeSet("benign", f, set.benign, &allBenign, &nBenign)
	}
	if nAttacks > 1 {
		allAttacks.line(stdout, "attacks, all files")
	}
	if nBenign > 1 {
		allBenign.line(stdout, "benign, all files")
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
