package exchange

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/internal/streamguard"
	"github.com/moat-gateway/moat/sdk/abi"
)

// RouteRequest is the body of POST /v1/routes/{name}: data only.
type RouteRequest struct {
	Input     *string           `json:"input"`
	Variables map[string]string `json:"variables"`
	Stream    bool              `json:"stream"`
}

// routeResponse is the body of a non-streaming route answer.
type routeResponse struct {
	Output     any             `json:"output"`
	Usage      anthropic.Usage `json:"usage"`
	RequestID  string          `json:"request_id"`
	Model      string          `json:"model"`
	StopReason string          `json:"stop_reason,omitempty"`
}

// DecodeRouteRequest reads a route call's body, refusing anything but
// its data.
func DecodeRouteRequest(body []byte) (*RouteRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var rr RouteRequest
	if err := dec.Decode(&rr); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, anthropic.InvalidRequest("%s: wrong type, expected %s", ute.Field, ute.Type)
		}
		msg := err.Error()
		if strings.HasPrefix(msg, "json: unknown field ") {
			return nil, anthropic.InvalidRequest("%s: unknown field (a route accepts only \"input\", \"variables\" and \"stream\"; instructions, model and limits are set on the server)", strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`))
		}
		return nil, anthropic.InvalidRequest("request body is not valid JSON: %s", msg)
	}
	if dec.More() {
		return nil, anthropic.InvalidRequest("request body has data after the JSON object")
	}
	if rr.Input == nil && len(rr.Variables) == 0 {
		return nil, anthropic.InvalidRequest("input: field required")
	}
	return &rr, nil
}

// Route is what a route's calls need: its settings, its compiled prompt
// and its chains. Name, Model, MaxTokens and Template are required; the
// zero value of the rest sends no temperature, refuses streamed calls,
// answers text, makes no repair round and estimates the prompt at nothing.
type Route struct {
	// Name names the route in records and refusals.
	Name string
	// Model and MaxTokens are the upstream request's.
	Model     string
	MaxTokens int
	// Temperature, when set, is the upstream request's.
	Temperature *float64
	// Stream allows callers to ask for a streamed answer.
	Stream bool
	// JSON parses the answer as JSON (format = "json"); RepairRetries is
	// how many times an answer the guard refuses is sent back for repair.
	JSON          bool
	RepairRetries int
	// PromptBytes is the length of the route's system text and task, for
	// the input estimate.
	PromptBytes int
	Template    *prompt.Template
	Chains
}

// ServeRoute serves a call of rt (the edge found the route and checked
// that the caller may call it) with body: admit, reserve, the input chain
// on its data, the route's prompt, the upstream (streaming, or with repair
// rounds for JSON), the output guard, settle and record.
func (c *Call) ServeRoute(rt *Route, body []byte) error {
	r, chains := rt, &rt.Chains
	c.Route, c.Model = r.Name, r.Model
	rr, err := DecodeRouteRequest(body)
	if err != nil {
		return err
	}
	if rr.Stream && !r.Stream {
		return anthropic.InvalidRequest("stream: route %q does not allow streaming", r.Name)
	}
	c.Stream = rr.Stream
	in, meta, err := c.routeData(r, chains.Input, rr)
	if err != nil {
		return err
	}
	rendered, err := rt.Template.Render(in)
	if err != nil {
		return err // a *prompt.InputError is an invalid request; the rest internal
	}
	guard := c.newGuard(chains.Stages(rendered.Canary), meta)
	messages := []map[string]any{{"role": "user", "content": rendered.User}}
	if rr.Stream {
		// Routes stream Anthropic's own events, judged like /v1/messages.
		b, err := routeBody(r, rendered.System, messages, true)
		if err != nil {
			return err
		}
		return c.relayStream(b, guard)
	}
	return c.routeWithRepair(r, rendered.System, messages, guard)
}

// routeData admits the call, reserves its worst-case cost and runs the
// route's input chain on the input and each variable.
func (c *Call) routeData(r *Route, input pipeline.Chain, rr *RouteRequest) (prompt.RouteInput, abi.Context, error) {
	in := prompt.RouteInput{Variables: map[string]string{}}
	if rr.Input != nil {
		in.Input = *rr.Input
	}
	est := int64(len(in.Input)+r.PromptBytes)/3 + 16
	for k, v := range rr.Variables {
		in.Variables[k] = v
		est += int64(len(v)) / 3
	}
	meta := abi.Context{Route: r.Name, Model: r.Model, Client: c.Who.ClientID, User: c.Who.User, RequestID: c.ID}
	if err := c.Admit(); err != nil {
		return in, meta, err
	}
	if err := c.Reserve(r.Model, est, int64(r.MaxTokens)*int64(1+r.RepairRetries)); err != nil {
		return in, meta, err
	}
	var err error
	if in.Input, err = c.runChain(input, abi.PhaseInput, in.Input, meta); err != nil {
		return in, meta, err
	}
	c.keepInput(in.Input)
	for k, v := range in.Variables {
		if in.Variables[k], err = c.runChain(input, abi.PhaseInput, v, meta); err != nil {
			return in, meta, err
		}
	}
	return in, meta, nil
}

// routeBody is the upstream request of a route call.
func routeBody(r *Route, system string, messages []map[string]any, stream bool) ([]byte, error) {
	req := map[string]any{"model": r.Model, "max_tokens": r.MaxTokens, "messages": messages}
	if system != "" {
		req["system"] = system
	}
	if r.Temperature != nil {
		req["temperature"] = *r.Temperature
	}
	if stream {
		req["stream"] = true
	}
	return json.Marshal(req)
}

// routeWithRepair calls the upstream until the output passes the guard:
// an output refused by a stage that Repairs (a JSON route's schema) is
// sent back with the reason, up to repair_retries times.
func (c *Call) routeWithRepair(r *Route, system string, messages []map[string]any, guard *streamguard.Guard) error {
	for attempt := 0; ; attempt++ {
		b, err := routeBody(r, system, messages, false)
		if err != nil {
			return err
		}
		text, stop, verr, err := c.routeOnce(b, guard)
		if err != nil {
			return err
		}
		if verr == nil {
			return c.routeAnswer(r, text, stop)
		}
		if attempt >= r.RepairRetries {
			return verr
		}
		var rej *pipeline.RejectError
		reason := "invalid output"
		if errors.As(verr, &rej) {
			reason = rej.Reason
		}
		messages = append(messages,
			map[string]any{"role": "assistant", "content": text},
			map[string]any{"role": "user", "content": fmt.Sprintf("Your previous answer failed validation: %s. Reply again with only the corrected JSON.", reason)})
	}
}

// routeAnswer settles the call and answers with its judged output.
func (c *Call) routeAnswer(r *Route, text, stop string) error {
	resp := routeResponse{Output: text, Usage: c.usage, RequestID: c.ID, Model: r.Model, StopReason: stop}
	if r.JSON {
		var v any
		if err := json.Unmarshal([]byte(streamguard.StripFence(text)), &v); err != nil {
			return fault.New(fault.UpstreamFailed, "route output is not valid JSON")
		}
		resp.Output = v
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	c.Settle()
	return c.Respond(out)
}

// routeOnce makes one upstream call for a route and judges the text.
// verr is a refusal that can be repaired; err anything else.
func (c *Call) routeOnce(body []byte, guard *streamguard.Guard) (text, stop string, verr, err error) {
	resp, err := c.callUpstream(http.MethodPost, "/v1/messages", body)
	if err != nil {
		return "", "", nil, err
	}
	b, err := c.readUpstream(resp)
	if err != nil {
		return "", "", nil, err
	}
	c.guard = guard // an upstream error's message is judged by the route's chain
	if resp.StatusCode != http.StatusOK {
		return "", "", nil, UpstreamFailure(resp.StatusCode, b)
	}
	msg, err := anthropic.DecodeResponse(b)
	if err != nil {
		return "", "", nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	c.usage = c.usage.Add(msg.Usage)
	raw, err := msg.Text()
	if err != nil {
		return "", "", nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	out, verr := guard.Whole(raw)
	if verr != nil {
		if guard.Repairable(verr) {
			return raw, "", verr, nil
		}
		return "", "", nil, verr
	}
	out = c.scrubber().String(out)
	c.KeepOutput(out)
	return out, msg.StopReason(), nil, nil
}
