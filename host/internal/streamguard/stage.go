package streamguard

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/plugins/jsonschema"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Caps declares what an output stage needs from the guard, or what it can
// do; the guard reads these and never a stage's name.
type Caps uint8

const (
	// Incremental: the stage judges partial text (Context.Partial), giving
	// in its verdict's hold (or its configured hold_back) the suffix it may
	// still need. A stage without it makes the guard hold a streamed block
	// until the block ends.
	Incremental Caps = 1 << iota
	// WholeJSON: the stage judges the model's whole answer as JSON (text
	// answers only, a ```json fence removed). The stages after it see each
	// string value of the JSON it passed, except SeesOriginal ones, which
	// see the whole answer.
	WholeJSON
	// Repairs: a refusal by the stage can be sent back to the model with
	// its reason for another answer (a route's repair rounds).
	Repairs
	// SeesOriginal: the stage judges the text as the model wrote it as well
	// as what the stages before it made of it, so an earlier redactor
	// cannot hide what it looks for (a leak detector).
	SeesOriginal
)

// Stage is one step of the output guard: a plugin and its capabilities.
type Stage struct {
	Plugin *pipeline.Plugin
	Caps   Caps
}

// Name names the stage in records and refusals.
func (s Stage) Name() string { return s.Plugin.Name }

// Has reports whether the stage declares every capability of c.
func (s Stage) Has(c Caps) bool { return s.Caps&c == c }

// Chain returns the stages of an output chain: each plugin configured
// with streaming = "incremental" judges partial text; the others need
// whole blocks.
func Chain(c pipeline.Chain) []Stage {
	out := make([]Stage, 0, len(c))
	for _, p := range c {
		var caps Caps
		if p.Streaming == "incremental" {
			caps = Incremental
		}
		out = append(out, Stage{Plugin: p, Caps: caps})
	}
	return out
}

// SchemaName is the name of the JSON answer validator in records and
// refusals: the json-schema built-in.
const SchemaName = "json-schema"

// Schema returns the stage that validates a JSON-mode answer: the
// json-schema built-in run natively with schema (nil: the answer must only
// parse as JSON), whose refusals a route can repair. The schema is compiled
// now rather than on the first answer.
func Schema(schema map[string]any) (Stage, error) {
	_, out, ok := builtin.Native(SchemaName)
	if !ok || out == nil {
		return Stage{}, fmt.Errorf("the %s built-in is missing from this build", SchemaName)
	}
	if schema == nil {
		schema = map[string]any{}
	}
	cfg, err := json.Marshal(map[string]any{"schema": schema})
	if err != nil {
		return Stage{}, fmt.Errorf("encoding schema: %w", err)
	}
	if err := jsonschema.CheckConfig(cfg); err != nil {
		return Stage{}, err
	}
	st := &pipeline.NativeStage{PluginName: SchemaName, Output: out}
	p := &pipeline.Plugin{Stage: st, Name: SchemaName, OnError: "reject", Config: cfg, Streaming: "buffer"}
	return Stage{Plugin: p, Caps: WholeJSON | Repairs}, nil
}

// CanaryName is the canary's name in records and refusals.
const CanaryName = "canary"

// Canary returns the stage that refuses output holding the request's
// canary (see prompt.ContainsCanary), on the model's own text and on what
// the chain made of it. On partial text it holds back only a suffix that
// could still begin the canary (prompt.CanaryHold).
func Canary(canary string) Stage {
	p := &pipeline.Plugin{Stage: canaryStage(canary), Name: CanaryName, OnError: "reject", Streaming: "incremental"}
	return Stage{Plugin: p, Caps: Incremental | SeesOriginal}
}

// canaryStage is the canary check as a pipeline stage.
type canaryStage string

// canaryLeak is the reason of a canary refusal.
const canaryLeak = "output contains the request's canary: system prompt leak"

func (c canaryStage) Name() string { return CanaryName }

func (c canaryStage) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	if prompt.ContainsCanary(req.Text, string(c)) {
		return abi.Verdict{Action: abi.Reject, Reason: canaryLeak}, nil
	}
	v := abi.Verdict{Action: abi.Allow}
	if req.Context.Partial {
		h := prompt.CanaryHold(req.Text, string(c))
		v.Hold = &h
	}
	return v, nil
}
