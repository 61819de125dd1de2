package gateway

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/scrub"
	"github.com/moat-gateway/moat/sdk/abi"
)

// This file applies the output chain, the canary and the key scrubber to
// everything the client receives, following the content model in
// anthropic/output.go: response blocks, stream deltas and upstream error
// messages.

// scrubberName names moat's key scrubber in refusals.
const scrubberName = "moat-scrub"

// checkRelay refuses a relay_unknown_types entry that names a type moat
// judges: listing it would not relay it unjudged, and says the operator
// misread what it does.
func checkRelay(cfg *config.Config) error {
	for _, n := range cfg.Upstream.RelayUnknownTypes {
		if anthropic.KnownBlockType(n) || anthropic.KnownDeltaType(n) || anthropic.KnownEventType(n) {
			return fmt.Errorf("upstream.relay_unknown_types: %q is a type moat judges; only unknown types can be relayed", n)
		}
	}
	return nil
}

// relay returns the unknown types relayed (upstream.relay_unknown_types),
// the set the state built once.
func (cl *call) relay() anthropic.Relay { return cl.st.relayBlocks }

// scrubber masks the upstream keys (current and previous), the key the
// caller presented, and anything key-shaped.
func (cl *call) scrubber() *scrub.Scrubber {
	if cl.scrub != nil {
		return cl.scrub
	}
	secrets := cl.g.deps.Secrets()
	h := cl.c.Request.Header
	for _, v := range h.Values("X-Api-Key") {
		secrets = append(secrets, strings.TrimSpace(v))
	}
	for _, v := range h.Values("Authorization") {
		if tok, ok := strings.CutPrefix(strings.TrimSpace(v), "Bearer "); ok {
			secrets = append(secrets, strings.TrimSpace(tok))
		}
	}
	cl.scrub = scrub.New(secrets...)
	return cl.scrub
}

// outputJudge is the call's anthropic.StreamJudge: the output guard (chain
// and canary; nil when the client has neither) and then the scrubber, on
// every string the client receives.
type outputJudge struct {
	cl     *call
	guard  *outputGuard
	sc     *scrub.Scrubber
	blocks map[int]*judgedText
	// now says the upstream has nothing more buffered: the guard judges
	// the text it holds rather than waiting for more (see outputGuard.feed).
	now bool
}

// judgedText is one streamed text or thinking block being judged.
type judgedText struct {
	bg blockGuard
	sc *scrub.Stream
	// orig is thinking text received and not yet released: released
	// thinking must equal it, byte for byte, because it is signed.
	orig string
}

func (cl *call) outputJudge(guard *outputGuard) *outputJudge {
	cl.guard = guard
	return &outputJudge{cl: cl, guard: guard, sc: cl.scrubber(), blocks: map[int]*judgedText{}}
}

// as points the guard's plugin context at one field.
func (j *outputJudge) as(f anthropic.Field) {
	j.guard.meta.Kind, j.guard.meta.Path, j.guard.meta.Role = f.Kind, f.Path, "assistant"
}

// Judge implements anthropic.OutputJudge.
func (j *outputJudge) Judge(f anthropic.Field) (string, error) {
	out := f.Text
	if j.guard != nil {
		j.as(f)
		var err error
		if out, err = j.guard.whole(j.cl, f.Text); err != nil {
			return "", err
		}
	}
	out = j.sc.String(out)
	if f.Kind == abi.KindThinking && out != f.Text {
		return "", j.signedModify(f.Path, out, f.Text)
	}
	if f.Kind == abi.KindText && !f.Key {
		j.cl.keepOutput(out)
	}
	return out, nil
}

// Check implements anthropic.OutputJudge: identifiers and opaque data are
// relayed as sent, so one holding a key refuses the response.
func (j *outputJudge) Check(f anthropic.Field) error {
	if j.sc.Found(f.Text) {
		return &pipeline.RejectError{Plugin: scrubberName, Phase: abi.PhaseOutput,
			Reason: fmt.Sprintf("%s holds a key-shaped string in data moat relays unchanged", f.Path)}
	}
	return nil
}

func (j *outputJudge) block(index int) *judgedText {
	jt := j.blocks[index]
	if jt == nil {
		jt = &judgedText{sc: j.sc.Stream()}
		j.blocks[index] = jt
	}
	return jt
}

// Feed implements anthropic.StreamJudge: the guard's hold-back, then the
// scrubber's.
func (j *outputJudge) Feed(index int, f anthropic.Field) (string, error) {
	jt := j.block(index)
	out := f.Text
	if j.guard != nil {
		j.as(f)
		var err error
		if out, err = j.guard.feed(j.cl, &jt.bg, f.Text, j.now); err != nil {
			return "", err
		}
	}
	out = jt.sc.Write(out)
	if f.Kind == abi.KindThinking {
		jt.orig += f.Text
		if !strings.HasPrefix(jt.orig, out) {
			return "", j.signedModify(f.Path, out, jt.orig)
		}
		jt.orig = jt.orig[len(out):]
	}
	return out, nil
}

// Flush implements anthropic.StreamJudge.
func (j *outputJudge) Flush(index int, f anthropic.Field) (string, error) {
	jt := j.blocks[index]
	if jt == nil {
		return "", nil
	}
	delete(j.blocks, index)
	out := ""
	if j.guard != nil {
		j.as(f)
		var err error
		if out, err = j.guard.flush(j.cl, &jt.bg); err != nil {
			return "", err
		}
	}
	out = jt.sc.Write(out) + jt.sc.Flush()
	if f.Kind == abi.KindThinking && out != jt.orig {
		return "", j.signedModify(f.Path, out, jt.orig)
	}
	return out, nil
}

// signedModify is the refusal of a change to a thinking block: thinking is
// signed, and the API rejects a thinking block whose text changed when the
// client sends it back, so a modify verdict (or a masked key) refuses the
// response instead.
func (j *outputJudge) signedModify(path, got, want string) error {
	name := j.cl.lastModifier()
	if j.sc.Found(want) {
		name = scrubberName
	}
	return &pipeline.RejectError{Plugin: name, Phase: abi.PhaseOutput,
		Reason: fmt.Sprintf("it would modify %s, a signed thinking block; thinking cannot be changed without breaking its signature, so the response is refused", path)}
}

// lastModifier names an output plugin that modified text in this call.
func (cl *call) lastModifier() string {
	for i := len(cl.verdicts) - 1; i >= 0; i-- {
		if v := cl.verdicts[i]; v.Phase == abi.PhaseOutput && v.Action == abi.Modify {
			return v.Plugin
		}
	}
	return scrubberName
}

// outputFailure classifies a refusal of the output model: an unknown or
// malformed shape is an upstream failure naming it; a plugin's verdict
// keeps its own kind.
func outputFailure(err error) error {
	var ut *anthropic.UnknownTypeError
	var mo *anthropic.MalformedOutputError
	if errors.As(err, &ut) || errors.As(err, &mo) {
		return fault.New(fault.UpstreamFailed, "%s", err.Error())
	}
	return err
}

// withheldMessage replaces an upstream error message the output chain
// refused.
const withheldMessage = "upstream error (its message was withheld: the output chain refused it)"

// cleanError prepares an error for the client. An upstream error's message
// goes through the output chain (kind "error"; a refusal replaces it with
// moat's own text) and the scrubber (an error type that is not one of the
// API's was already replaced by toAPI). moat's own messages are scrubbed
// too: some quote what the upstream or the client sent.
func (cl *call) cleanError(ae *apiError) *apiError {
	if ae == nil {
		return nil
	}
	out := *ae
	if ae.Upstream {
		g := cl.guard
		if g == nil && cl.who.ClientID != "" {
			cs := cl.st.client(cl.who.ClientID)
			g = newOutputGuard(cs.output, nil, "", cl.outputMeta())
		}
		if g != nil {
			g.meta.Kind, g.meta.Path, g.meta.Role = abi.KindError, "error.message", ""
			msg, err := g.whole(cl, out.Message)
			if err != nil {
				msg = withheldMessage
			}
			out.Message = msg
		}
	}
	out.Message = cl.scrubber().String(out.Message)
	return &out
}

// outputMeta is the plugin context of the call's output.
func (cl *call) outputMeta() abi.Context {
	return abi.Context{Route: cl.route, Model: cl.model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
}

// scrubBody masks keys in every string of a JSON body relayed as is
// (count_tokens, models). A body that does not parse is refused.
func (cl *call) scrubBody(b []byte) ([]byte, error) {
	out, err := anthropic.MapStrings(b, cl.scrubber().String)
	if err != nil {
		return nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	return out, nil
}
