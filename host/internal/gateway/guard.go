package gateway

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/sdk/abi"
)

// runChain runs a chain and keeps its verdicts for the audit trail.
func (cl *call) runChain(chain pipeline.Chain, phase abi.Phase, text string, meta abi.Context) (string, error) {
	if len(chain) == 0 {
		return text, nil
	}
	out, recs, err := chain.Run(cl.c.Request.Context(), phase, text, meta)
	cl.addVerdicts(recs)
	cl.logFailures(recs)
	return out, err
}

// logFailures writes one WARN line per failed plugin call, naming its
// cause; the client only sees the generic message.
func (cl *call) logFailures(recs []pipeline.Record) {
	for _, r := range recs {
		if r.Cause == "" {
			continue
		}
		cl.g.deps.Logger.Warn("plugin failed", "plugin", r.Plugin, "phase", string(r.Phase), "cause", string(r.Cause),
			"duration", r.Duration, "request_id", cl.id, "outcome", string(r.Action))
	}
}

// addVerdicts merges verdicts by plugin and phase: the most severe action
// wins and durations add up, so a streamed or multi-block response gives one
// verdict per plugin.
func (cl *call) addVerdicts(recs []pipeline.Record) {
	for _, r := range recs {
		merged := false
		for i := range cl.verdicts {
			v := &cl.verdicts[i]
			if v.Plugin == r.Plugin && v.Phase == r.Phase {
				v.Duration += r.Duration
				if severity(r.Action) > severity(v.Action) {
					v.Action, v.Reason = r.Action, r.Reason
				}
				if r.Cause != "" && v.Cause == "" {
					v.Cause = r.Cause
				}
				merged = true
				break
			}
		}
		if !merged {
			cl.verdicts = append(cl.verdicts, r)
		}
	}
}

func severity(a abi.Action) int {
	switch a {
	case abi.Allow:
		return 0
	case abi.Modify:
		return 1
	case abi.Reject:
		return 3
	default: // errors and skips
		return 2
	}
}

// outputGuard validates output text: the output chain, then the canary.
// The zero outputGuard (and a nil one) passes everything.
type outputGuard struct {
	chain pipeline.Chain
	// schema, for a JSON-mode route or client, judges the model's raw JSON
	// first; the chain then runs on each string value of the parsed JSON.
	schema pipeline.Chain
	canary string
	meta   abi.Context
	// buffered is set when a plugin needs the whole text.
	buffered bool
}

func newOutputGuard(chain, schema pipeline.Chain, canary string, meta abi.Context) *outputGuard {
	if len(chain) == 0 && len(schema) == 0 && canary == "" {
		return nil
	}
	og := &outputGuard{chain: chain, schema: schema, canary: canary, meta: meta}
	if len(schema) > 0 {
		// JSON is judged once it is complete.
		og.buffered = true
	}
	for _, p := range chain {
		if p.Streaming != "incremental" {
			og.buffered = true
		}
	}
	return og
}

// whole validates a complete text.
func (og *outputGuard) whole(cl *call, text string) (string, error) {
	if og == nil {
		return text, nil
	}
	if len(og.schema) > 0 && (og.meta.Kind == "" || og.meta.Kind == abi.KindText) {
		// Only the answer must be JSON; thinking, tool input and the
		// rest go through the chain as they are.
		return og.wholeJSON(cl, text)
	}
	out, _, _, err := og.run(cl, text, false)
	return out, err
}

// wholeJSON validates a JSON-mode answer: the schema judges the raw text,
// the canary the whole of it, and the chain each string value, so that an
// HTML policy escapes values without breaking the JSON around them.
func (og *outputGuard) wholeJSON(cl *call, text string) (string, error) {
	raw, err := cl.runChain(og.schema, abi.PhaseOutput, stripFence(text), og.meta)
	if err != nil {
		return "", err
	}
	if err := og.checkCanary(cl, text, raw); err != nil {
		return "", err
	}
	if len(og.chain) == 0 {
		return raw, nil
	}
	out, err := mapJSONStrings([]byte(stripFence(raw)), func(s string) (string, error) {
		return cl.runChain(og.chain, abi.PhaseOutput, s, og.meta)
	})
	if err != nil {
		var rej *pipeline.RejectError
		var pe *pipeline.PluginError
		if errors.As(err, &rej) || errors.As(err, &pe) {
			return "", err
		}
		return "", &pipeline.RejectError{Plugin: "json-schema", Reason: "output is not valid JSON", Phase: abi.PhaseOutput}
	}
	return string(out), nil
}

// run runs the chain plugin by plugin on text and then checks the canary.
// With partial set (the unreleased tail of a stream) it also returns how
// many trailing bytes of text must be kept back: for each plugin its hold
// (Verdict.Hold, or its configured hold_back when it gives none), widened
// by what the plugins before it removed, since their output is what it
// judged; the largest of these, and the canary's. legacy reports that a
// plugin gave no hold and its configured hold_back was used.
func (og *outputGuard) run(cl *call, text string, partial bool) (out string, hold int, legacy bool, err error) {
	meta := og.meta
	meta.Partial = partial
	cur, shrunk := text, 0
	for _, p := range og.chain {
		next, recs, err := pipeline.Chain{p}.Run(cl.c.Request.Context(), abi.PhaseOutput, cur, meta)
		cl.addVerdicts(recs)
		if err != nil {
			return "", 0, false, err
		}
		if partial {
			h := p.HoldBack
			if len(recs) == 1 && recs[0].Hold >= 0 {
				h = recs[0].Hold
			} else if h > 0 {
				legacy = true
			}
			hold = max(hold, min(h, len(cur))+shrunk)
			shrunk += max(0, len(cur)-len(next))
		}
		cur = next
	}
	if err := og.checkCanary(cl, text, cur); err != nil {
		return "", 0, false, err
	}
	if partial {
		// Keep back only what could still be the start of the canary
		// (prompt.CanaryHold sees through what ContainsCanary does).
		hold = min(max(hold, prompt.CanaryHold(text, og.canary)), len(text))
	}
	return cur, hold, legacy, nil
}

// checkCanary refuses text whose original or validated form holds the
// request's canary.
func (og *outputGuard) checkCanary(cl *call, text, out string) error {
	if og.canary == "" {
		return nil
	}
	t0 := time.Now()
	leaked := prompt.ContainsCanary(out, og.canary) || prompt.ContainsCanary(text, og.canary)
	rec := pipeline.Record{Plugin: "canary", Phase: abi.PhaseOutput, Action: abi.Allow, Duration: time.Since(t0), Hold: -1}
	if leaked {
		rec.Action, rec.Reason = abi.Reject, "output contains the request's canary: system prompt leak"
	}
	cl.addVerdicts([]pipeline.Record{rec})
	if leaked {
		return &pipeline.RejectError{Plugin: "canary", Reason: rec.Reason, Phase: abi.PhaseOutput}
	}
	return nil
}

// blockGuard holds the unreleased text of one streamed text block.
type blockGuard struct {
	pending string
	// judged is len(pending) at the last attempt that released nothing,
	// so a burst is judged once, when it is complete.
	judged int
}

// maxBatch bounds how much unjudged text a burst may accumulate before the
// guard judges it even though more events are buffered.
const maxBatch = 4 << 10

// feed adds a delta and returns the text that may be released now. now
// says the upstream has nothing more buffered (the next read waits for the
// network): the guard judges then, so text arriving paced is released at
// once and a burst is judged once.
//
// Released text is what the chain makes of a prefix cut where the plugins'
// holds allow (see run): the whole unreleased tail is judged (so a reject
// anywhere in it stops the stream before any of it leaves), and the prefix
// is released only when the chain splits at the cut, chain(tail) ==
// chain(prefix) + chain(rest), so a match spanning the cut is never released
// half-transformed and the rest, judged later without the prefix, cannot
// escape it.
func (og *outputGuard) feed(cl *call, bg *blockGuard, delta string, now bool) (string, error) {
	bg.pending += delta
	if og.buffered || (!now && len(bg.pending)-bg.judged < maxBatch) {
		return "", nil
	}
	bg.judged = len(bg.pending)
	outTail, hold, legacy, err := og.run(cl, bg.pending, true)
	if err != nil {
		return "", err
	}
	if hold == 0 {
		bg.pending, bg.judged = "", 0
		return outTail, nil
	}
	cut := len(bg.pending) - hold
	if legacy {
		cut = safeCut(bg.pending, cut)
	}
	for cut > 0 && !utf8.RuneStart(bg.pending[cut]) {
		cut--
	}
	if cut <= 0 {
		return "", nil
	}
	seg := bg.pending[:cut]
	outSeg, _, _, err := og.run(cl, seg, false)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(outTail, outSeg) {
		return "", nil
	}
	outRest, _, _, err := og.run(cl, bg.pending[cut:], true)
	if err != nil {
		return "", err
	}
	if len(outSeg)+len(outRest) != len(outTail) || !strings.HasSuffix(outTail, outRest) {
		return "", nil
	}
	bg.pending = bg.pending[cut:]
	bg.judged = len(bg.pending)
	return outSeg, nil
}

// flush validates and releases what is left at the end of a block.
func (og *outputGuard) flush(cl *call, bg *blockGuard) (string, error) {
	if bg.pending == "" {
		return "", nil
	}
	out, err := og.whole(cl, bg.pending)
	bg.pending, bg.judged = "", 0
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
