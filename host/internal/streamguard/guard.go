package streamguard

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Guard runs the output stages over text the client will receive: whole
// texts (Whole) and streamed blocks (Feed, Flush). A nil *Guard passes
// everything.
type Guard struct {
	ctx    context.Context
	stages []Stage
	meta   abi.Context
	rec    Recorder
	// buffered is set when a stage needs whole blocks.
	buffered bool
	// splitAlways makes every cut take the full split check (splits), as
	// a cut does when a stage gave no hold; tests and benchmarks set it to
	// compare with the one-run path (settled).
	splitAlways bool
	// req and recs are reused by every stage call (one guard serves one
	// response, a call at a time), so judging a delta allocates neither.
	req  abi.Request
	recs [1]pipeline.Record
}

// Recorder receives the records of the stages' runs (a
// *pipeline.Verdicts, or a request's, which also logs failures). Add must
// not keep recs: the guard reuses it.
type Recorder interface {
	Add(recs []pipeline.Record)
}

// New returns the guard of stages (nil when there are none). ctx bounds
// the plugin calls; meta is their context; rec receives their records.
func New(ctx context.Context, stages []Stage, meta abi.Context, rec Recorder) *Guard {
	if len(stages) == 0 {
		return nil
	}
	g := &Guard{ctx: ctx, stages: stages, meta: meta, rec: rec}
	for _, s := range stages {
		if !s.Has(Incremental) {
			g.buffered = true
		}
	}
	return g
}

// At points the stages' context at one field of the output.
func (g *Guard) At(kind, path, role string) {
	if g != nil {
		g.meta.Kind, g.meta.Path, g.meta.Role = kind, path, role
	}
}

// Repairable reports whether err is a refusal by a stage that Repairs.
func (g *Guard) Repairable(err error) bool {
	var rej *pipeline.RejectError
	if g == nil || !errors.As(err, &rej) {
		return false
	}
	for _, s := range g.stages {
		if s.Has(Repairs) && s.Name() == rej.Plugin {
			return true
		}
	}
	return false
}

// jsonStage is the index of the WholeJSON stage, or -1.
func (g *Guard) jsonStage() int {
	for i, s := range g.stages {
		if s.Has(WholeJSON) {
			return i
		}
	}
	return -1
}

// Whole judges a complete text.
func (g *Guard) Whole(text string) (string, error) {
	if g == nil {
		return text, nil
	}
	if i := g.jsonStage(); i >= 0 && (g.meta.Kind == "" || g.meta.Kind == abi.KindText) {
		// Only the answer must be JSON; thinking, tool input and the
		// rest go through the other stages as they are.
		return g.wholeJSON(g.stages[i], text)
	}
	out, _, _, err := g.run(text, false)
	return out, err
}

// wholeJSON judges a JSON-mode answer: js judges the raw text, the
// SeesOriginal stages the whole of it, and the other stages each string
// value, so that an HTML policy escapes values without breaking the JSON
// around them.
func (g *Guard) wholeJSON(js Stage, text string) (string, error) {
	raw, err := g.runOne(js, StripFence(text), g.meta)
	if err != nil {
		return "", err
	}
	var values []Stage
	for _, s := range g.stages {
		switch {
		case s.Has(WholeJSON):
		case s.Has(SeesOriginal):
			if _, err := g.runOne(s, text, g.meta); err != nil {
				return "", err
			}
			if _, err := g.runOne(s, raw, g.meta); err != nil {
				return "", err
			}
		default:
			values = append(values, s)
		}
	}
	if len(values) == 0 {
		return raw, nil
	}
	out, err := mapJSONStrings([]byte(StripFence(raw)), func(s string) (string, error) {
		for _, st := range values {
			var err error
			if s, err = g.runOne(st, s, g.meta); err != nil {
				return "", err
			}
		}
		return s, nil
	})
	if err != nil {
		var rej *pipeline.RejectError
		var pe *pipeline.PluginError
		if errors.As(err, &rej) || errors.As(err, &pe) {
			return "", err
		}
		return "", &pipeline.RejectError{Plugin: js.Name(), Reason: "output is not valid JSON", Phase: abi.PhaseOutput}
	}
	return string(out), nil
}

// runOne runs one stage on text and keeps its record.
func (g *Guard) runOne(s Stage, text string, meta abi.Context) (string, error) {
	out, _, err := g.call(s, text, meta)
	return out, err
}

// call runs one stage on text with the guard's request and keeps its
// record, which it returns.
func (g *Guard) call(s Stage, text string, meta abi.Context) (string, pipeline.Record, error) {
	g.req = abi.Request{Phase: abi.PhaseOutput, Text: text, Config: s.Plugin.Config, Context: meta}
	out, rec, err := s.Plugin.Judge(g.ctx, &g.req)
	if rec.Plugin != "" {
		g.recs[0] = rec
		g.rec.Add(g.recs[:])
	}
	return out, rec, err
}

// runHeld runs one stage on text and returns the suffix of text it holds
// back: its verdict's hold, or its configured hold_back when it gives none
// (legacy).
func (g *Guard) runHeld(s Stage, text string, meta abi.Context) (out string, hold int, legacy bool, err error) {
	out, rec, err := g.call(s, text, meta)
	if err != nil {
		return "", 0, false, err
	}
	hold = s.Plugin.HoldBack
	if rec.Plugin != "" && rec.Hold >= 0 {
		hold = rec.Hold
	} else if hold > 0 {
		legacy = true
	}
	return out, min(hold, len(text)), legacy, nil
}

// run runs the stages (but a WholeJSON one) in order on text. With
// partial set (the unreleased tail of a stream) it also returns how many
// trailing bytes of text must be kept back: for each stage its hold,
// widened by what the stages before it removed, since their output is
// what it judged, and for a SeesOriginal stage also its hold on text
// itself; the largest of these. legacy reports that a stage gave no hold
// and its configured hold_back was used.
func (g *Guard) run(text string, partial bool) (out string, hold int, legacy bool, err error) {
	meta := g.meta
	meta.Partial = partial
	cur, shrunk := text, 0
	for _, s := range g.stages {
		if s.Has(WholeJSON) {
			continue
		}
		if s.Has(SeesOriginal) {
			_, h, l, err := g.runHeld(s, text, meta)
			if err != nil {
				return "", 0, false, err
			}
			hold, legacy = max(hold, h), legacy || l
		}
		next, h, l, err := g.runHeld(s, cur, meta)
		if err != nil {
			return "", 0, false, err
		}
		hold, legacy = max(hold, h+shrunk), legacy || l
		shrunk += max(0, len(cur)-len(next))
		cur = next
	}
	if !partial {
		return cur, 0, false, nil
	}
	return cur, min(hold, len(text)), legacy, nil
}

// block holds the unreleased text of one streamed text block.
type block struct {
	pending string
	// more is the text received since pending was last judged: a burst's
	// deltas collect here and become one string when judged, so a burst
	// is judged (and copied) once, when it is complete.
	more []byte
}

// take moves the text received since the last judgement to pending.
func (b *block) take() {
	if len(b.more) == 0 {
		return
	}
	// One allocation, where pending + string(more) makes two.
	var sb strings.Builder
	sb.Grow(len(b.pending) + len(b.more))
	sb.WriteString(b.pending)
	sb.Write(b.more)
	b.pending, b.more = sb.String(), b.more[:0]
}

// maxBatch bounds how much unjudged text a burst may accumulate before the
// guard judges it even though more events are buffered.
const maxBatch = 4 << 10

// feed adds a delta and returns the text that may be released now. now
// says the upstream has nothing more buffered (the next read waits for the
// network): the guard judges then, so text arriving paced is released at
// once and a burst is judged once.
//
// Released text is a prefix of what the stages make of the whole
// unreleased tail (so a reject anywhere in it stops the stream before any
// of it leaves), cut where their holds allow (see run). When every stage
// gave its hold (the ABI's verdict hold: what could still change once more
// text follows; everything before it is final and carries no context the
// rest needs), the tail is judged once per step (settled); when one gave
// none (its configured hold_back, cut at whitespace) the prefix is
// released only when the stages split at the cut, judge(tail) ==
// judge(prefix) + judge(rest) (splits). Either way a match spanning the
// cut is never released half-transformed, and the rest, judged later
// without the prefix, cannot escape it.
func (g *Guard) feed(b *block, delta string, now bool) (string, error) {
	b.more = append(b.more, delta...)
	if g.buffered || (!now && len(b.more) < maxBatch) {
		return "", nil
	}
	b.take()
	outTail, hold, legacy, err := g.run(b.pending, true)
	if err != nil {
		return "", err
	}
	if hold == 0 {
		b.pending = ""
		return outTail, nil
	}
	cut := g.cut(b.pending, hold, legacy)
	if cut <= 0 {
		return "", nil
	}
	var outSeg string
	ok := false
	if legacy || g.splitAlways {
		outSeg, ok, err = g.splits(b.pending, cut, outTail)
	} else {
		outSeg, ok, err = g.settled(b.pending, cut, outTail)
	}
	if err != nil || !ok {
		return "", err
	}
	b.pending = b.pending[cut:]
	return outSeg, nil
}

// settled returns the part of outTail, the stages' judgement of pending
// with exact holds, that belongs to pending's prefix up to cut. When the
// stages left pending unchanged it is that prefix, and no stage runs
// again: each said everything before its hold is final, and cut is at or
// before each hold. When a stage changed it, the rest (the held bytes,
// few) is judged again alone and the prefix's part is released only when
// that judgement is outTail's end, so a match whose context lies before
// the cut (a credential's name, released, and its value, held) is never
// judged without it.
func (g *Guard) settled(pending string, cut int, outTail string) (string, bool, error) {
	if outTail == pending {
		return pending[:cut], true, nil
	}
	outRest, _, _, err := g.run(pending[cut:], true)
	if err != nil || !strings.HasSuffix(outTail, outRest) {
		return "", false, err
	}
	return outTail[:len(outTail)-len(outRest)], true, nil
}

// cut is where pending may be cut to keep hold bytes back: on a rune
// boundary, and after whitespace for a stage that gave no hold.
func (g *Guard) cut(pending string, hold int, legacy bool) int {
	cut := len(pending) - hold
	if legacy {
		cut = safeCut(pending, cut)
	}
	for cut > 0 && !utf8.RuneStart(pending[cut]) {
		cut--
	}
	return cut
}

// splits judges pending's prefix up to cut and the rest, and reports
// whether they make outTail, the judgement of the whole of pending; it
// returns the judged prefix.
func (g *Guard) splits(pending string, cut int, outTail string) (string, bool, error) {
	outSeg, _, _, err := g.run(pending[:cut], false)
	if err != nil || !strings.HasPrefix(outTail, outSeg) {
		return "", false, err
	}
	outRest, _, _, err := g.run(pending[cut:], true)
	if err != nil {
		return "", false, err
	}
	if len(outSeg)+len(outRest) != len(outTail) || !strings.HasSuffix(outTail, outRest) {
		return "", false, nil
	}
	return outSeg, true, nil
}

// flush judges and releases what is left at the end of a block.
func (g *Guard) flush(b *block) (string, error) {
	b.take()
	if b.pending == "" {
		return "", nil
	}
	out, err := g.Whole(b.pending)
	b.pending = ""
	return out, err
}

// safeCut returns a cut point at or before limit: after the last
// whitespace, or at a rune boundary when there is none.
func safeCut(s string, limit int) int {
	if limit <= 0 {
		return 0
	}
	if limit > len(s) {
		limit = len(s)
	}
	for i := limit; i > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= size
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return limit
}

// StripFence removes a ```json fence around a JSON answer.
func StripFence(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "```") {
		t = strings.TrimPrefix(t, "```")
		t = strings.TrimPrefix(t, "json")
		t = strings.TrimSuffix(strings.TrimSpace(t), "```")
	}
	return strings.TrimSpace(t)
}

// mapJSONStrings rewrites every string value (not object keys) of a JSON
// document through f with the strict decoder of anthropic.MapStrings,
// keeping the order of keys and elements and the bytes of what f left
// unchanged. The first error of f stops it.
func mapJSONStrings(doc []byte, f func(string) (string, error)) ([]byte, error) {
	var ferr error
	out, err := anthropic.MapStrings(doc, func(s string) string {
		if ferr != nil {
			return s
		}
		o, err := f(s)
		if err != nil {
			ferr = err
			return s
		}
		return o
	})
	if ferr != nil {
		return nil, ferr
	}
	return out, err
}
