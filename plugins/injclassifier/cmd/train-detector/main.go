// Command train-detector trains the injection-classifier built-in's model:
// logistic regression over hashed character and word n-grams
// (injclassifier.AppendFeatures), fitted with AdaGrad from a fixed seed, and
// writes the quantized weights to plugins/injclassifier/model.bin.
//
// It reads every *_injection.json and *_benign.json in --train (JSON arrays
// of strings) and each --extra-attacks file, printing each file's SHA-256,
// keeps a seeded share of every file out of training (--holdout) and
// reports the trained model's detection and false-positive rates on it, per
// file and in total. With --target-fp it chooses the threshold: the lowest
// at which each held-out benign prompt file, each --calib-benign file and
// each --calib-source (a source left out of a second model trained for the
// purpose) stays at or under that false-positive rate. The same flags, data
// and seed give the same bytes.
//
//	go run ./plugins/injclassifier/cmd/train-detector --train ../shared/eval/train \
//	    --extra-attacks ../shared/eval/injection/jailbreaks_inthewild.json
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moat-gateway/moat/plugins/injclassifier"
	"github.com/moat-gateway/moat/plugins/injection"
)

type example struct {
	weight float64   // the example's share of its file's weight
	feats  []uint32  // every feature occurrence, for the quantized report
	uniq   []uint32  // distinct buckets
	vals   []float64 // their length-normalized counts
	label  float32   // 1 injection, 0 benign
	file   int
	rules  bool    // injection-heuristics flags the text (its own threshold)
	rule   float64 // injection-heuristics' score, with --fuse
}

// fuse is --fuse: the weight of the injection-heuristics score added to the
// model's raw score wherever the threshold is chosen and figures reported,
// as the plugin's heuristics option does.
var fuse float64

// raw is the (fused) raw score of a training or held-out example.
func raw(m *injclassifier.Model, e example) float64 {
	return m.RawFeatures(e.feats) + fuse*e.rule
}

// rawText is the (fused) raw score of a text.
func rawText(m *injclassifier.Model, t string) float64 {
	r := m.Raw(t)
	if fuse > 0 {
		r += fuse * injection.Score(t).Score
	}
	return r
}

// newExample extracts the features of text.
func newExample(text string, file int, attack bool) example {
	e := example{feats: injclassifier.AppendFeatures(nil, text), file: file}
	if attack {
		e.label = 1
	}
	if len(e.feats) == 0 {
		return e
	}
	sorted := slices.Clone(e.feats)
	slices.Sort(sorted)
	x := 1 / injclassifier.Norm(len(sorted))
	for i, b := range sorted {
		if i > 0 && b == sorted[i-1] {
			e.vals[len(e.vals)-1] += x
			continue
		}
		e.uniq = append(e.uniq, b)
		e.vals = append(e.vals, x)
	}
	return e
}

type dataFile struct {
	path   string
	attack bool
	texts  []string
	weight float64 // multiplies the file's weight in training (--weight)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "train-detector:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("train-detector", flag.ContinueOnError)
	trainDir := fs.String("train", "../shared/eval/train", "directory of *_injection.json and *_benign.json files")
	var extra []string
	fs.Func("extra-attacks", "another JSON array of attack texts (repeatable)", func(s string) error { extra = append(extra, s); return nil })
	var extraBenign []string
	fs.Func("extra-benign", "another JSON array of benign texts (repeatable)", func(s string) error { extraBenign = append(extraBenign, s); return nil })
	outPath := fs.String("out", "plugins/injclassifier/model.bin", "where to write the model")
	seed := fs.Uint64("seed", 20261204, "random seed (split and example order)")
	holdout := fs.Float64("holdout", 0.2, "share of each file kept out of training for the report")
	epochs := fs.Int("epochs", 16, "passes over the training examples")
	lr := fs.Float64("lr", 0.2, "AdaGrad learning rate")
	l2 := fs.Float64("l2", 1e-6, "L2 penalty per example")
	var unseenAttacks, unseenBenign []string
	fs.Func("report-attacks", "a JSON array of attack texts never trained on, reported after training (repeatable)", func(s string) error { unseenAttacks = append(unseenAttacks, s); return nil })
	fs.Func("report-benign", "a JSON array (or NotInject objects) of benign texts never trained on, reported after training (repeatable)", func(s string) error { unseenBenign = append(unseenBenign, s); return nil })
	holdoutOut := fs.String("write-holdout", "", "write the held-out texts to this file as {\"attacks\": [...], \"benign\": [...]}")
	threshold := fs.Float64("threshold", injclassifier.DefaultThreshold, "probability threshold for the held-out report (see --target-fp)")
	var calib, calibAttacks []string
	fs.Func("calib-attacks", "a JSON array of attack texts never trained on (for example built from kept-out templates), reported with the held-out split for making choices; it does not set the threshold (repeatable)", func(s string) error { calibAttacks = append(calibAttacks, s); return nil })
	fs.Func("calib-benign", "a JSON array of benign texts never trained on, used with the held-out split to choose the threshold (repeatable)", func(s string) error { calib = append(calib, s); return nil })
	targetFP := fs.Float64("target-fp", 0, "when > 0, choose the threshold: the lowest at which the false-positive rate of every --calib-benign file and of each file's held-out benign prompts (files not matched by --documents) is at most this")
	documents := fs.String("documents", "bipia_benign", "held-out benign files whose name contains this are documents, not prompts, and do not set the threshold")
	exclude := map[string]bool{}
	fs.Func("exclude", "NAME: do not read the training file whose base name is NAME (for leave-one-source-out validation: pass it to --report-* or --calib-benign instead) (repeatable)", func(s string) error { exclude[s] = true; return nil })
	calibSources := map[string]bool{}
	fs.Func("calib-source", "NAME: with --target-fp, a training file whose source the threshold must generalise to: a second model is trained without the named files, and the threshold must keep that model's false positives on all texts of each named benign file at most --target-fp (name a source's attack file too, so the second model does not learn the source's style as an attack) (repeatable)", func(s string) error { calibSources[s] = true; return nil })
	fs.Float64Var(&fuse, "fuse", 0, "when > 0, score every text as the plugin does with heuristics = this weight (the model's raw score plus the weight times injection-heuristics' score) when choosing the threshold and reporting")
	topWords := fs.Int("top-words", 0, "print the N words of the training attacks that the model scores highest on their own (the words a benign text using them risks being flagged for)")
	weights := map[string]float64{}
	fs.Func("weight", "NAME=W: multiply the weight of the training file whose base name is NAME by W (repeatable)", func(s string) error {
		name, w, ok := strings.Cut(s, "=")
		f, err := strconv.ParseFloat(w, 64)
		if !ok || err != nil || f <= 0 {
			return fmt.Errorf("want NAME=W with W > 0, got %q", s)
		}
		weights[name] = f
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}

	files, err := readFiles(*trainDir, extra, extraBenign, out)
	if err != nil {
		return err
	}
	files = slices.DeleteFunc(files, func(f dataFile) bool { return exclude[filepath.Base(f.path)] })
	var nAttack, nBenign int
	for _, f := range files {
		if f.attack {
			nAttack += len(f.texts)
		} else {
			nBenign += len(f.texts)
		}
	}
	if nAttack == 0 || nBenign == 0 {
		return fmt.Errorf("training needs attack and benign texts, got %d and %d", nAttack, nBenign)
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	var train, held []example
	var heldTexts struct {
		Attacks []string `json:"attacks"`
		Benign  []string `json:"benign"`
	}
	for fi, f := range files {
		idx := rng.Perm(len(f.texts))
		nHeld := int(math.Round(*holdout * float64(len(f.texts))))
		for k, i := range idx {
			ex := newExample(f.texts[i], fi, f.attack)
			isHeld := k < nHeld
			if fuse > 0 || isHeld {
				// One scoring serves both the fusion and the held-out
				// report of the rules alone.
				score := injection.Score(f.texts[i]).Score
				ex.rule = score // raw weighs it by fuse
				ex.rules = score >= injection.DefaultThreshold
			}
			if isHeld {
				held = append(held, ex)
				if f.attack {
					heldTexts.Attacks = append(heldTexts.Attacks, f.texts[i])
				} else {
					heldTexts.Benign = append(heldTexts.Benign, f.texts[i])
				}
			} else {
				train = append(train, ex)
			}
		}
	}
	fmt.Fprintf(out, "examples: %d training, %d held out (seed %d, holdout %.2f)\n", len(train), len(held), *seed, *holdout)

	if *holdoutOut != "" {
		b, err := json.Marshal(heldTexts)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*holdoutOut, b, 0o644); err != nil {
			return fmt.Errorf("writing held-out texts: %w", err)
		}
	}
	for i := range files {
		files[i].weight = 1
		if w, ok := weights[filepath.Base(files[i].path)]; ok {
			files[i].weight = w
			delete(weights, filepath.Base(files[i].path))
		}
	}
	for name := range weights {
		return fmt.Errorf("--weight %s: no such training file", name)
	}
	m := fit(train, files, rng, *epochs, *lr, *l2)
	enc := m.Encode()
	if err := os.WriteFile(*outPath, enc, 0o644); err != nil {
		return fmt.Errorf("writing model: %w", err)
	}
	sum := sha256.Sum256(enc)
	fmt.Fprintf(out, "model: %s, %d bytes, sha256 %s, bias %.3f, scale %.5f\n", *outPath, len(enc), hex.EncodeToString(sum[:]), m.Bias, m.Scale)
	if *topWords > 0 {
		printTopWords(out, m, files, *topWords)
	}
	if *targetFP > 0 {
		sets := heldOutSets(m, files, held, *documents)
		cs, err := fileSets(m, calib)
		if err != nil {
			return err
		}
		sets = append(sets, cs...)
		if len(calibSources) > 0 {
			us, err := unseenSourceSets(out, files, train, held, calibSources, *seed, *epochs, *lr, *l2, *targetFP)
			if err != nil {
				return err
			}
			sets = append(sets, us...)
		}
		t, err := lowestThreshold(out, sets, *targetFP)
		if err != nil {
			return err
		}
		*threshold = t
	}
	report(out, m, files, held, *threshold)
	if err := reportCalibAttacks(out, m, calibAttacks, *threshold); err != nil {
		return err
	}
	return reportUnseen(out, m, unseenAttacks, append(calib, unseenBenign...), *threshold)
}

// readFiles reads the data files in a fixed order and prints their hashes.
func readFiles(dir string, extra, extraBenign []string, out io.Writer) ([]dataFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var files []dataFile
	add := func(path string, attack bool) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		var texts []string
		if err := json.Unmarshal(b, &texts); err != nil {
			return fmt.Errorf("parsing %s: want a JSON array of strings: %w", path, err)
		}
		sum := sha256.Sum256(b)
		label := "benign"
		if attack {
			label = "injection"
		}
		fmt.Fprintf(out, "read %s  %s  %d %s\n", hex.EncodeToString(sum[:]), path, len(texts), label)
		files = append(files, dataFile{path: path, attack: attack, texts: texts})
		return nil
	}
	for _, p := range names {
		base := strings.TrimSuffix(filepath.Base(p), ".json")
		switch {
		case strings.HasSuffix(base, "_injection"):
			if err := add(p, true); err != nil {
				return nil, err
			}
		case strings.HasSuffix(base, "_benign"):
			if err := add(p, false); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range extra {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range extraBenign {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *_injection.json or *_benign.json files in %s", dir)
	}
	return files, nil
}

// fit trains logistic regression with AdaGrad; the classes are weighted to
// count equally. The weights are then quantized to signed bytes.
func fit(train []example, files []dataFile, rng *rand.Rand, epochs int, lr, l2 float64) *injclassifier.Model {
	const n = 1 << injclassifier.Bits
	w := make([]float64, n)
	g2 := make([]float64, n)
	var bias, bg2 float64
	// Each file weighs as the square root of its size, so large files do
	// not drown small sources; then both classes weigh the same in total.
	perFile := map[int]int{}
	for _, e := range train {
		perFile[e.file]++
	}
	var pos, neg float64
	for i := range train {
		e := &train[i]
		e.weight = files[e.file].weight / math.Sqrt(float64(perFile[e.file]))
		if e.label == 1 {
			pos += e.weight
		} else {
			neg += e.weight
		}
	}
	total := pos + neg
	wPos := float64(len(train)) / total * total / (2 * pos)
	wNeg := float64(len(train)) / total * total / (2 * neg)
	order := make([]int, len(train))
	for i := range order {
		order[i] = i
	}
	for range epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			e := &train[i]
			if len(e.uniq) == 0 {
				continue
			}
			z := bias
			for k, b := range e.uniq {
				z += w[b] * e.vals[k]
			}
			p := 1 / (1 + math.Exp(-z))
			cw := wNeg * e.weight
			if e.label == 1 {
				cw = wPos * e.weight
			}
			g := cw * (p - float64(e.label))
			for k, b := range e.uniq {
				gi := g*e.vals[k] + l2*w[b]
				g2[b] += gi * gi
				w[b] -= lr * gi / (math.Sqrt(g2[b]) + 1e-8)
			}
			bg2 += g * g
			bias -= lr * g / (math.Sqrt(bg2) + 1e-8)
		}
	}
	var maxAbs float64
	for _, v := range w {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	scale := maxAbs / 127
	if scale == 0 {
		scale = 1
	}
	m := &injclassifier.Model{Bias: float32(bias), Scale: float32(scale), Weights: make([]int8, n)}
	for i, v := range w {
		m.Weights[i] = int8(math.Round(v / scale))
	}
	return m
}

// report prints the quantized model's flagged share of each file's held-out
// texts, and of all held-out attacks and benign texts.
func report(out io.Writer, m *injclassifier.Model, files []dataFile, held []example, threshold float64) {
	type tally struct{ n, flagged int }
	per := make([]tally, len(files))
	var att, ben tally
	rawThreshold := math.Log(threshold / (1 - threshold))
	for _, e := range held {
		flagged := raw(m, e) >= rawThreshold
		t := &per[e.file]
		t.n++
		tt := &ben
		if e.label == 1 {
			tt = &att
		}
		tt.n++
		if flagged {
			t.flagged++
			tt.flagged++
		}
	}
	fmt.Fprintf(out, "held-out report at threshold %.2f (flagged / held out):\n", threshold)
	for i, f := range files {
		kind := "benign, false positives"
		if f.attack {
			kind = "injection, detected"
		}
		t := per[i]
		fmt.Fprintf(out, "  %-40s %4d/%-4d %5.1f%%  (%s)\n", filepath.Base(f.path), t.flagged, t.n, pct(t.flagged, t.n), kind)
	}
	fmt.Fprintf(out, "  all injection: detected %d/%d (%.1f%%)\n", att.flagged, att.n, pct(att.flagged, att.n))
	fmt.Fprintf(out, "  all benign: false positives %d/%d (%.1f%%)\n", ben.flagged, ben.n, pct(ben.flagged, ben.n))
	fmt.Fprintf(out, "held-out threshold sweep (detected / false positives):")
	for _, t := range sweep {
		cut := math.Log(t / (1 - t))
		var a, b int
		for _, e := range held {
			if raw(m, e) >= cut {
				if e.label == 1 {
					a++
				} else {
					b++
				}
			}
		}
		fmt.Fprintf(out, "  %.2f: %.1f%%/%.1f%%", t, pct(a, att.n), pct(b, ben.n))
	}
	fmt.Fprintln(out)
	var ra, rb, oa, ob int
	for _, e := range held {
		either := e.rules || raw(m, e) >= rawThreshold
		switch {
		case e.label == 1:
			ra += b2i(e.rules)
			oa += b2i(either)
		default:
			rb += b2i(e.rules)
			ob += b2i(either)
		}
	}
	fmt.Fprintf(out, "held-out, injection-heuristics alone: %.1f%%/%.1f%%; either (a chain of both) at %.3f: %.1f%%/%.1f%%\n", pct(ra, att.n), pct(rb, ben.n), threshold, pct(oa, att.n), pct(ob, ben.n))
}

// sweep lists the thresholds of the held-out sweep.
var sweep = []float64{0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// reportUnseen prints the flagged share of each file the model never saw.
func reportUnseen(out io.Writer, m *injclassifier.Model, attacks, benign []string, threshold float64) error {
	if len(attacks)+len(benign) == 0 {
		return nil
	}
	fmt.Fprintf(out, "never trained on, at threshold %.2f:\n", threshold)
	for _, set := range []struct {
		files []string
		kind  string
	}{{attacks, "injection, detected"}, {benign, "benign, false positives"}} {
		for _, p := range set.files {
			if err := reportFile(out, m, p, set.kind, threshold); err != nil {
				return err
			}
		}
	}
	return nil
}

// reportFile prints the share of file p's texts scoring at or above the
// threshold, and a sweep of other thresholds; kind says what that share is.
func reportFile(out io.Writer, m *injclassifier.Model, p, kind string, threshold float64) error {
	texts, err := injection.LoadTexts(p)
	if err != nil {
		return err
	}
	raws := make([]float64, len(texts))
	for i, t := range texts {
		raws[i] = rawText(m, t)
	}
	above := func(t float64) int {
		k, logit := 0, math.Log(t/(1-t))
		for _, r := range raws {
			if r >= logit {
				k++
			}
		}
		return k
	}
	n := above(threshold)
	fmt.Fprintf(out, "  %-40s %4d/%-4d %5.1f%%  (%s); sweep", filepath.Base(p), n, len(texts), pct(n, len(texts)), kind)
	for _, t := range sweep {
		fmt.Fprintf(out, " %.2f:%.0f%%", t, pct(above(t), len(texts)))
	}
	fmt.Fprintln(out)
	return nil
}

// reportCalibAttacks prints the detected share of each --calib-attacks
// file at the threshold, with a sweep, and in total.
func reportCalibAttacks(out io.Writer, m *injclassifier.Model, paths []string, threshold float64) error {
	if len(paths) == 0 {
		return nil
	}
	fmt.Fprintf(out, "calibration attacks (never trained on), at threshold %.3f:\n", threshold)
	for _, p := range paths {
		if err := reportFile(out, m, p, "injection, detected", threshold); err != nil {
			return err
		}
	}
	return nil
}

// scoreSet is a named set of benign texts' raw scores, for choosing the
// threshold.
type scoreSet struct {
	name string
	raws []float64
}

// heldOutSets returns the held-out benign prompts of each file (the
// held-out benign texts of files whose name does not contain documents) as
// one set per file with at least 50 of them; the smaller files are pooled.
func heldOutSets(m *injclassifier.Model, files []dataFile, held []example, documents string) []scoreSet {
	const minSet = 50
	perFile := map[int][]float64{}
	for _, e := range held {
		if e.label == 0 && (documents == "" || !strings.Contains(filepath.Base(files[e.file].path), documents)) {
			perFile[e.file] = append(perFile[e.file], raw(m, e))
		}
	}
	var sets []scoreSet
	small := scoreSet{name: "smaller held-out prompt files"}
	for fi := range files {
		raws := perFile[fi]
		switch {
		case len(raws) >= minSet:
			sets = append(sets, scoreSet{name: "held-out " + filepath.Base(files[fi].path), raws: raws})
		default:
			small.raws = append(small.raws, raws...)
		}
	}
	if len(small.raws) > 0 {
		sets = append(sets, small)
	}
	return sets
}

// fileSets scores the texts of each file.
func fileSets(m *injclassifier.Model, paths []string) ([]scoreSet, error) {
	var sets []scoreSet
	for _, p := range paths {
		texts, err := injection.LoadTexts(p)
		if err != nil {
			return nil, err
		}
		s := scoreSet{name: filepath.Base(p)}
		for _, t := range texts {
			s.raws = append(s.raws, rawText(m, t))
		}
		sets = append(sets, s)
	}
	return sets, nil
}

// unseenSourceSets trains a second model without the benign files named in
// sources (its own random stream, so the shipped model does not depend on
// it) and returns its scores of every text of each of them: how the model
// treats benign text from a source it has never seen.
func unseenSourceSets(out io.Writer, files []dataFile, train, held []example, sources map[string]bool, seed uint64, epochs int, lr, l2, target float64) ([]scoreSet, error) {
	isSource := func(e example) bool { return sources[filepath.Base(files[e.file].path)] }
	found := map[string]bool{}
	for _, f := range files {
		if sources[filepath.Base(f.path)] {
			found[filepath.Base(f.path)] = true
		}
	}
	for name := range sources {
		if !found[name] {
			return nil, fmt.Errorf("--calib-source %s: no such training file", name)
		}
	}
	without := slices.DeleteFunc(slices.Clone(train), isSource)
	rng := rand.New(rand.NewPCG(seed+1, seed^0x6a09e667f3bcc909))
	m := fit(without, files, rng, epochs, lr, l2)
	perFile := map[int][]float64{}
	for _, set := range [][]example{train, held} {
		for _, e := range set {
			if isSource(e) {
				perFile[e.file] = append(perFile[e.file], raw(m, e))
			}
		}
	}
	var sets, attacks []scoreSet
	for fi, f := range files {
		if raws, ok := perFile[fi]; ok {
			s := scoreSet{name: filepath.Base(f.path) + " (source never trained on)", raws: raws}
			if f.attack {
				attacks = append(attacks, s)
			} else {
				sets = append(sets, s)
			}
		}
	}
	fmt.Fprintf(out, "calibration model trained on %d examples, without %d sources\n", len(without), len(found))
	// The threshold the unseen benign sources need on their own, and what
	// the calibration model detects of the unseen attack sources there.
	tUnseen, _ := lowestThreshold(io.Discard, sets, target)
	for _, s := range attacks {
		n := 0
		for _, r := range s.raws {
			if r >= math.Log(tUnseen/(1-tUnseen)) {
				n++
			}
		}
		fmt.Fprintf(out, "  %s: detected %d/%d (%.1f%%) by the calibration model at %.3f, where its unseen benign sources are at most %.1f%% flagged\n", s.name, n, len(s.raws), pct(n, len(s.raws)), tUnseen, 100*target)
	}
	for _, s := range attacks {
		fmt.Fprintf(out, "  %s: detected by the calibration model, sweep", s.name)
		for _, t := range sweep {
			n := 0
			for _, r := range s.raws {
				if r >= math.Log(t/(1-t)) {
					n++
				}
			}
			fmt.Fprintf(out, " %.2f:%.0f%%", t, pct(n, len(s.raws)))
		}
		fmt.Fprintln(out)
	}
	return sets, nil
}

// lowestThreshold returns the lowest threshold on a grid of 0.001 at which
// the false-positive rate of every set is at most target.
func lowestThreshold(out io.Writer, sets []scoreSet, target float64) (float64, error) {
	lowest := func(raws []float64) float64 {
		for k := 1; k < 1000; k++ {
			t := float64(k) / 1000
			raw := math.Log(t / (1 - t))
			n := 0
			for _, r := range raws {
				if r >= raw {
					n++
				}
			}
			if float64(n) <= target*float64(len(raws)) {
				return t
			}
		}
		return 1
	}
	var best float64
	fmt.Fprintf(out, "lowest threshold with at most %.1f%% false positives:\n", 100*target)
	for _, s := range sets {
		t := lowest(s.raws)
		fmt.Fprintf(out, "  %-60s %5d texts  %.3f\n", s.name, len(s.raws), t)
		best = max(best, t)
	}
	if best >= 1 {
		return 0, fmt.Errorf("no threshold below 0.999 meets %.1f%% false positives", 100*target)
	}
	fmt.Fprintf(out, "threshold %.3f: the lowest that meets it on every set\n", best)
	return best, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printTopWords prints the n words, among those in at least 5 training
// attack texts, whose own features (the word unigram and the character
// n-grams of " word ") weigh most towards injection: the model's trigger
// words, for writing benign training texts that use them.
func printTopWords(out io.Writer, m *injclassifier.Model, files []dataFile, n int) {
	docs := map[string]int{}
	for _, f := range files {
		if !f.attack {
			continue
		}
		for _, t := range f.texts {
			seen := map[string]bool{}
			for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool { return !('a' <= r && r <= 'z') }) {
				if len(w) >= 3 && !seen[w] {
					seen[w] = true
					docs[w]++
				}
			}
		}
	}
	type ws struct {
		w string
		s float64
	}
	var list []ws
	for w, c := range docs {
		if c < 5 {
			continue
		}
		feats := injclassifier.AppendFeatures(nil, "a "+w+" a")
		var sum float64
		for _, b := range feats {
			sum += float64(m.Weights[b])
		}
		list = append(list, ws{w, sum * float64(m.Scale)})
	}
	slices.SortFunc(list, func(a, b ws) int {
		if a.s != b.s {
			if a.s > b.s {
				return -1
			}
			return 1
		}
		return strings.Compare(a.w, b.w)
	})
	fmt.Fprintf(out, "top %d trigger words (own weight):", n)
	for _, x := range list[:min(n, len(list))] {
		fmt.Fprintf(out, " %s %.2f", x.w, x.s)
	}
	fmt.Fprintln(out)
}
