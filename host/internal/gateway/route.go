package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/sdk/abi"
)

// routeRequest is the body of POST /v1/routes/{name}: data only.
type routeRequest struct {
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

func decodeRouteRequest(body []byte) (*routeRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var rr routeRequest
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

// serveRoute serves POST /v1/routes/{name}: accept the call, run the
// input chain on its data, render the route's prompt, call the upstream
// (streaming, or with repair rounds for JSON) and answer.
func (cl *call) serveRoute() error {
	cl.route = cl.c.Param("name")
	rs, rr, err := cl.acceptRoute()
	if err != nil {
		return err
	}
	r := rs.cfg
	in, meta, err := cl.routeData(rs, rr)
	if err != nil {
		return err
	}
	rendered, err := rs.tmpl.Render(in)
	if err != nil {
		return err // a *prompt.InputError is an invalid request; the rest internal
	}
	guard := newOutputGuard(rs.output, rs.schema, rendered.Canary, meta)
	messages := []map[string]any{{"role": "user", "content": rendered.User}}
	if rr.Stream {
		// Routes stream Anthropic's own events, validated like /v1/messages.
		b, err := routeBody(r, rendered.System, messages, true)
		if err != nil {
			return err
		}
		return cl.relayStream(b, guard)
	}
	return cl.routeWithRepair(r, rendered.System, messages, guard)
}

// acceptRoute authenticates the caller, finds the route it may call and
// reads its request.
func (cl *call) acceptRoute() (*routeState, *routeRequest, error) {
	if err := cl.identify(); err != nil {
		return nil, nil, err
	}
	rs, ok := cl.st.routes[cl.route]
	if !ok {
		return nil, nil, fault.New(fault.NotFound, "route %q does not exist", cl.route)
	}
	if !rs.clients[cl.who.ClientID] {
		return nil, nil, fault.New(fault.Forbidden, "client %q may not call route %q", cl.who.ClientID, cl.route)
	}
	r := rs.cfg
	cl.model = r.Model
	body, err := cl.readBody()
	if err != nil {
		return nil, nil, err
	}
	rr, err := decodeRouteRequest(body)
	if err != nil {
		return nil, nil, err
	}
	if rr.Stream && !r.Stream {
		return nil, nil, anthropic.InvalidRequest("stream: route %q does not allow streaming", r.Name)
	}
	cl.stream = rr.Stream
	return rs, rr, nil
}

// routeData admits the call, reserves its worst-case cost and runs the
// route's input chain on the input and each variable.
func (cl *call) routeData(rs *routeState, rr *routeRequest) (prompt.RouteInput, abi.Context, error) {
	r := rs.cfg
	in := prompt.RouteInput{Variables: map[string]string{}}
	if rr.Input != nil {
		in.Input = *rr.Input
	}
	est := int64(len(in.Input)+len(r.SystemText)+len(r.Task))/3 + 16
	for k, v := range rr.Variables {
		in.Variables[k] = v
		est += int64(len(v)) / 3
	}
	meta := abi.Context{Route: r.Name, Model: r.Model, Client: cl.who.ClientID, User: cl.who.User, RequestID: cl.id}
	if err := cl.admit(); err != nil {
		return in, meta, err
	}
	if err := cl.reserve(r.Model, est, int64(r.MaxTokens)*int64(1+r.RepairRetries)); err != nil {
		return in, meta, err
	}
	var err error
	if in.Input, err = cl.runChain(rs.input, abi.PhaseInput, in.Input, meta); err != nil {
		return in, meta, err
	}
	cl.keepInput(in.Input)
	for k, v := range in.Variables {
		if in.Variables[k], err = cl.runChain(rs.input, abi.PhaseInput, v, meta); err != nil {
			return in, meta, err
		}
	}
	return in, meta, nil
}

// routeBody is the upstream request of a route call.
func routeBody(r *config.Route, system string, messages []map[string]any, stream bool) ([]byte, error) {
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
// a JSON route's output that fails its schema is sent back with the
// reason, up to repair_retries times.
func (cl *call) routeWithRepair(r *config.Route, system string, messages []map[string]any, guard *outputGuard) error {
	for attempt := 0; ; attempt++ {
		b, err := routeBody(r, system, messages, false)
		if err != nil {
			return err
		}
		text, stop, verr, err := cl.routeOnce(b, guard)
		if err != nil {
			return err
		}
		if verr == nil {
			return cl.routeAnswer(r, text, stop)
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

// routeAnswer settles the call and answers with its validated output.
func (cl *call) routeAnswer(r *config.Route, text, stop string) error {
	resp := routeResponse{Output: text, Usage: cl.usage, RequestID: cl.id, Model: r.Model, StopReason: stop}
	if r.Format == "json" {
		var v any
		if err := json.Unmarshal([]byte(stripFence(text)), &v); err != nil {
			return fault.New(fault.UpstreamFailed, "route output is not valid JSON")
		}
		resp.Output = v
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	cl.settle()
	return cl.respond(out)
}

// routeOnce makes one upstream call for a route and validates the text.
// verr is a validation failure (repairable); err anything else.
func (cl *call) routeOnce(body []byte, guard *outputGuard) (text, stop string, verr, err error) {
	resp, err := cl.callUpstream("/v1/messages", body)
	if err != nil {
		return "", "", nil, err
	}
	b, err := cl.readUpstream(resp)
	if err != nil {
		return "", "", nil, err
	}
	cl.guard = guard // an upstream error's message is judged by the route's chain
	if resp.StatusCode != http.StatusOK {
		return "", "", nil, upstreamFailure(resp.StatusCode, b)
	}
	msg, err := anthropic.DecodeResponse(b)
	if err != nil {
		return "", "", nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed response")
	}
	cl.usage = cl.usage.Add(msg.Usage)
	raw := msg.Text()
	out, verr := guard.whole(cl, raw)
	if verr != nil {
		var rej *pipeline.RejectError
		if errors.As(verr, &rej) && rej.Plugin == "json-schema" {
			return raw, "", verr, nil
		}
		return "", "", nil, verr
	}
	out = cl.scrubber().String(out)
	cl.keepOutput(out)
	var stopReason struct {
		StopReason string `json:"stop_reason"`
	}
	_ = json.Unmarshal(b, &stopReason)
	return out, stopReason.StopReason, nil, nil
}

// stripFence removes a ```json fence around a JSON answer.
func stripFence(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "```") {
		t = strings.TrimPrefix(t, "```")
		t = strings.TrimPrefix(t, "json")
		t = strings.TrimSuffix(strings.TrimSpace(t), "```")
	}
	return strings.TrimSpace(t)
}
