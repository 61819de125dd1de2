package anthropic

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Response is a decoded non-streaming Messages response. Fields moat does
// not read stay raw, so every field reaches the client.
type Response struct {
	Usage Usage
	ID    string

	raw    []byte
	fields object
	blocks []object
	dirty  bool
	// judged holds the content and stop details after Judge.
	judged map[string]*jsonValue
}

// DecodeResponse parses a Messages response body.
func DecodeResponse(body []byte) (*Response, error) {
	var fields object
	if err := decodeJSON(body, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("decoding upstream response: not a JSON object")
	}
	r := &Response{raw: body, fields: fields}
	if u, ok := fields["usage"]; ok {
		if err := json.Unmarshal(u, &r.Usage); err != nil {
			return nil, fmt.Errorf("decoding upstream response usage: %w", err)
		}
	}
	_ = json.Unmarshal(fields["id"], &r.ID)
	if c, ok := fields["content"]; ok {
		if err := decodeJSON(c, &r.blocks); err != nil {
			return nil, fmt.Errorf("decoding upstream response content: %w", err)
		}
	}
	return r, nil
}

// EachText calls fn on each text block and writes back changes.
func (r *Response) EachText(fn TextFunc) error {
	for _, b := range r.blocks {
		if b == nil {
			continue
		}
		changed, err := eachBlockText(b, fn, false)
		if err != nil {
			return err
		}
		if changed {
			r.dirty = true
		}
	}
	return nil
}

// Text returns the concatenated text of all text blocks.
func (r *Response) Text() string {
	var s string
	for _, b := range r.blocks {
		var t struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		raw, _ := json.Marshal(b)
		_ = json.Unmarshal(raw, &t)
		if t.Type == "text" {
			s += t.Text
		}
	}
	return s
}

// Judge passes every string the client receives to j, in place: each
// content block by its type (see output.go) and stop_details.explanation.
// Encode then returns the judged body, re-encoded from what was judged. A
// content block type moat does not know is refused (*UnknownTypeError)
// unless relay names it.
func (r *Response) Judge(j OutputJudge, relay Relay) error {
	r.judged = map[string]*jsonValue{}
	if c, ok := r.fields["content"]; ok {
		v, err := parseJSON(c)
		if err != nil {
			return malformed("content", "%v", err)
		}
		if v.kind != '[' {
			return malformed("content", "not an array")
		}
		for i, b := range v.vals {
			if err := judgeBlock(j, relay, b, "content."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		r.judged["content"] = v
	}
	if sd, ok := r.fields["stop_details"]; ok {
		v, err := parseJSON(sd)
		if err != nil {
			return malformed("stop_details", "%v", err)
		}
		wrapped := &jsonValue{kind: '{', keys: []string{"stop_details"}, vals: []*jsonValue{v}}
		if _, err := judgeEnvelope(j, wrapped, ""); err != nil {
			return err
		}
		r.judged["stop_details"] = v
	}
	r.dirty = true
	return nil
}

// Encode returns the body for the client: the original bytes when
// unchanged. An error means the changed body could not be encoded; the
// original must not be sent in its place.
func (r *Response) Encode() ([]byte, error) {
	if !r.dirty {
		return r.raw, nil
	}
	if r.judged != nil {
		for k, v := range r.judged {
			r.fields[k] = v.encode()
		}
		return r.encodeFields()
	}
	blocks, err := encodeJSON(r.blocks)
	if err != nil {
		return nil, fmt.Errorf("encoding response content: %w", err)
	}
	r.fields["content"] = blocks
	return r.encodeFields()
}

func (r *Response) encodeFields() ([]byte, error) {
	out, err := encodeJSON(r.fields)
	if err != nil {
		return nil, fmt.Errorf("encoding response: %w", err)
	}
	return out, nil
}

// DecodeUsage reads only the usage of a Messages response, for callers that
// relay the body unchanged.
func DecodeUsage(body []byte) (Usage, error) {
	var r struct {
		Type  string `json:"type"`
		Usage Usage  `json:"usage"`
	}
	// goccy/go-json skips the fields not read much faster than
	// encoding/json; the body goes to the client unchanged.
	if err := fastUnmarshal(body, &r); err != nil {
		return Usage{}, fmt.Errorf("decoding upstream response: %w", err)
	}
	return r.Usage, nil
}
