package gateway

import (
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
	chain  pipeline.Chain
	canary string
	meta   abi.Context
	// buffered is set when a plugin needs the whole text.
	buffered bool
	// holdBack is the number of trailing bytes kept back from a stream.
	holdBack int
}

func newOutputGuard(chain pipeline.Chain, canary string, meta abi.Context) *outputGuard {
	if len(chain) == 0 && canary == "" {
		return nil
	}
	og := &outputGuard{chain: chain, canary: canary, meta: meta}
	for _, p := range chain {
		if p.Streaming == "incremental" {
			og.holdBack = max(og.holdBack, p.HoldBack)
		} else {
			og.buffered = true
		}
	}
	if canary != "" {
		// Tolerant matching sees through inserted spaces and zero-width
		// characters: keep several canary lengths back.
		og.holdBack = max(og.holdBack, 4*len(canary))
	}
	return og
}

// whole validates a complete text.
func (og *outputGuard) whole(cl *call, text string) (string, error) {
	if og == nil {
		return text, nil
	}
	meta := og.meta
	out, err := cl.runChain(og.chain, abi.PhaseOutput, text, meta)
	if err != nil {
		return "", err
	}
	if og.canary != "" {
		t0 := time.Now()
		leaked := prompt.ContainsCanary(out, og.canary) || prompt.ContainsCanary(text, og.canary)
		rec := pipeline.Record{Plugin: "canary", Phase: abi.PhaseOutput, Action: abi.Allow, Duration: time.Since(t0)}
		if leaked {
			rec.Action, rec.Reason = abi.Reject, "output contains the request's canary: system prompt leak"
		}
		cl.addVerdicts([]pipeline.Record{rec})
		if leaked {
			return "", &pipeline.RejectError{Plugin: "canary", Reason: rec.Reason, Phase: abi.PhaseOutput}
		}
	}
	return out, nil
}

// blockGuard holds the unreleased text of one streamed text block.
type blockGuard struct {
	pending string
}

// feed adds a delta and returns the text that may be released now.
// Released text is what the chain makes of a prefix cut at a safe point:
// the whole unreleased tail is judged (so a reject anywhere in it stops
// the stream before any of it leaves), and the prefix is released only when
// the chain splits at the cut, chain(tail) == chain(prefix) + chain(rest),
// so a match spanning the cut is never released half-transformed and the
// rest, judged later without the prefix, cannot escape it (a prefix test
// alone lets "password = " go out and the value after it through).
func (og *outputGuard) feed(cl *call, bg *blockGuard, delta string) (string, error) {
	bg.pending += delta
	// Judge in steps rather than on every delta: each attempt runs the
	// chain three times over the window, and nothing is released unjudged
	// whichever way the text is cut into attempts.
	if og.buffered || len(bg.pending) < og.holdBack+releaseStep(og.holdBack) {
		return "", nil
	}
	outTail, err := og.whole(cl, bg.pending)
	if err != nil {
		return "", err
	}
	cut := safeCut(bg.pending, len(bg.pending)-og.holdBack)
	if cut <= 0 {
		return "", nil
	}
	seg := bg.pending[:cut]
	outSeg, err := og.whole(cl, seg)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(outTail, outSeg) {
		return "", nil
	}
	outRest, err := og.whole(cl, bg.pending[cut:])
	if err != nil {
		return "", err
	}
	if len(outSeg)+len(outRest) != len(outTail) || !strings.HasSuffix(outTail, outRest) {
		return "", nil
	}
	bg.pending = bg.pending[cut:]
	return outSeg, nil
}

// releaseStep is how much text past the hold-back accumulates before the
// guard tries to release some: half the hold-back, within [16, 256] bytes.
// Each attempt judges about two hold-backs of text three times, so a
// smaller step costs more CPU per byte for little earlier text.
func releaseStep(holdBack int) int { return min(max(holdBack/2, 16), 256) }

// flush validates and releases what is left at the end of a block.
func (og *outputGuard) flush(cl *call, bg *blockGuard) (string, error) {
	if bg.pending == "" {
		return "", nil
	}
	out, err := og.whole(cl, bg.pending)
	bg.pending = ""
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
