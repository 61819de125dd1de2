package streamguard

import (
	"fmt"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/sdk/abi"
)

// ScrubberName names moat's key scrubber in refusals.
const ScrubberName = "moat-scrub"

// Judge is a request's anthropic.StreamJudge: the guard (nil when the
// client has no output stages) and then the key scrubber, on every string
// the client receives, whole or streamed. A change to signed thinking
// refuses the response.
type Judge struct {
	guard *Guard
	sc    *scrub.Scrubber
	// verdicts name the output plugin that last modified text (for the
	// refusal of a change to signed thinking).
	verdicts *pipeline.Verdicts
	// Keep, when set, receives the judged answer text (for the audit
	// trail).
	Keep   Keeper
	blocks map[int]*judgedText
	// Now says the upstream has nothing more buffered: the guard judges
	// the text it holds rather than waiting for more (see Guard.feed).
	Now bool
}

// judgedText is one streamed text or thinking block being judged.
type judgedText struct {
	b  block
	sc *scrub.Stream
	// orig is thinking text received and not yet released: released
	// thinking must equal it, byte for byte, because it is signed.
	orig string
}

// NewJudge returns the judge of guard and sc. v names, for a refusal of
// a change to signed thinking, the output plugin that modified.
func NewJudge(guard *Guard, sc *scrub.Scrubber, v *pipeline.Verdicts) *Judge {
	return &Judge{guard: guard, sc: sc, verdicts: v, blocks: map[int]*judgedText{}}
}

// Keeper collects the answer text the client receives, for the audit
// trail.
type Keeper interface {
	KeepOutput(text string)
}

// as points the guard's context at one field.
func (j *Judge) as(f anthropic.Field) { j.guard.At(f.Kind, f.Path, "assistant") }

// Judge implements anthropic.OutputJudge.
func (j *Judge) Judge(f anthropic.Field) (string, error) {
	j.as(f)
	out, err := j.guard.Whole(f.Text)
	if err != nil {
		return "", err
	}
	out = j.sc.String(out)
	if f.Kind == abi.KindThinking && out != f.Text {
		return "", j.signedModify(f.Path, f.Text)
	}
	if f.Kind == abi.KindText && !f.Key && j.Keep != nil {
		j.Keep.KeepOutput(out)
	}
	return out, nil
}

// Check implements anthropic.OutputJudge: identifiers and opaque data are
// relayed as sent, so one holding a key refuses the response.
func (j *Judge) Check(f anthropic.Field) error {
	if j.sc.Found(f.Text) {
		return &pipeline.RejectError{Plugin: ScrubberName, Phase: abi.PhaseOutput,
			Reason: fmt.Sprintf("%s holds a key-shaped string in data moat relays unchanged", f.Path)}
	}
	return nil
}

func (j *Judge) block(index int) *judgedText {
	jt := j.blocks[index]
	if jt == nil {
		jt = &judgedText{sc: j.sc.Stream()}
		j.blocks[index] = jt
	}
	return jt
}

// Feed implements anthropic.StreamJudge: the guard's hold-back, then the
// scrubber's.
func (j *Judge) Feed(index int, f anthropic.Field) (string, error) {
	jt := j.block(index)
	out := f.Text
	if j.guard != nil {
		j.as(f)
		var err error
		if out, err = j.guard.feed(&jt.b, f.Text, j.Now); err != nil {
			return "", err
		}
	}
	out = jt.sc.Write(out)
	if f.Kind == abi.KindThinking {
		jt.orig += f.Text
		if !strings.HasPrefix(jt.orig, out) {
			return "", j.signedModify(f.Path, jt.orig)
		}
		jt.orig = jt.orig[len(out):]
	}
	return out, nil
}

// Flush implements anthropic.StreamJudge.
func (j *Judge) Flush(index int, f anthropic.Field) (string, error) {
	jt := j.blocks[index]
	if jt == nil {
		return "", nil
	}
	delete(j.blocks, index)
	out := ""
	if j.guard != nil {
		j.as(f)
		var err error
		if out, err = j.guard.flush(&jt.b); err != nil {
			return "", err
		}
	}
	out = jt.sc.Write(out) + jt.sc.Flush()
	if f.Kind == abi.KindThinking && out != jt.orig {
		return "", j.signedModify(f.Path, jt.orig)
	}
	return out, nil
}

// signedModify is the refusal of a change to a thinking block: thinking is
// signed, and the API rejects a thinking block whose text changed when the
// client sends it back, so a modify verdict (or a masked key) refuses the
// response instead.
func (j *Judge) signedModify(path, want string) error {
	name := j.verdicts.LastModifier(abi.PhaseOutput, ScrubberName)
	if j.sc.Found(want) {
		name = ScrubberName
	}
	return &pipeline.RejectError{Plugin: name, Phase: abi.PhaseOutput,
		Reason: fmt.Sprintf("it would modify %s, a signed thinking block; thinking cannot be changed without breaking its signature, so the response is refused", path)}
}

// WithheldMessage replaces an upstream error message the output stages
// refused.
const WithheldMessage = "upstream error (its message was withheld: the output chain refused it)"

// CleanMessage prepares an error message for the client. A message that
// quotes the upstream goes through guard (kind "error"; a refusal replaces
// it with moat's own text); every message goes through the scrubber, since
// some of moat's own quote what the upstream or the client sent.
func CleanMessage(msg string, quoted bool, guard *Guard, sc *scrub.Scrubber) string {
	if quoted && guard != nil {
		guard.At(abi.KindError, "error.message", "")
		out, err := guard.Whole(msg)
		if err != nil {
			out = WithheldMessage
		}
		msg = out
	}
	return sc.String(msg)
}
