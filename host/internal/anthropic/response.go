package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
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
	// judged is the whole body, strictly parsed and judged, after Judge.
	judged *node
	// tree is the body as DecodeResponse's strict parse read it (nil when
	// that parse failed); Judge judges it instead of parsing again.
	tree *node
}

// DecodeResponse parses a Messages response body: its id and usage now,
// its content only when EachText, Text or Encode needs it (Judge reads the
// body with the strict decoder instead).
func DecodeResponse(body []byte) (*Response, error) {
	// One strict parse serves the usage and Judge; the id and usage are
	// read from it when that reads what encoding/json would (headFromTree),
	// else below as before.
	if root, err := parseTree(body); err == nil && root.kind == '{' {
		r := &Response{raw: body, tree: root}
		if headFromTree(root, r) {
			return r, nil
		}
		return decodeHead(body, root)
	}
	return decodeHead(body, nil)
}

// usageNames are Usage's JSON names, in field order.
var usageNames = [...]string{"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}

// headFromTree sets r's id and usage from the parsed body and reports
// whether it could do so exactly as encoding/json reads them: only when no
// member name is a case variant of (or non-ASCII beside) the names read,
// and every usage count is an integer or null.
func headFromTree(root *node, r *Response) bool {
	var id, usage *node
	for i, k := range root.keys {
		switch {
		case k == "id":
			id = root.vals[i]
		case k == "usage":
			usage = root.vals[i]
		case !isASCII(k) || strings.EqualFold(k, "id") || strings.EqualFold(k, "usage"):
			return false
		}
	}
	if usage != nil && usage.kind != 'n' {
		if usage.kind != '{' {
			return false
		}
		counts := [...]*int64{&r.Usage.InputTokens, &r.Usage.OutputTokens, &r.Usage.CacheCreationInputTokens, &r.Usage.CacheReadInputTokens}
	members:
		for i, k := range usage.keys {
			v := usage.vals[i]
			for j, name := range usageNames {
				switch {
				case k == name:
					switch v.kind {
					case 'n':
					case '0':
						n, err := strconv.ParseInt(string(v.raw), 10, 64)
						if err != nil {
							return false
						}
						*counts[j] = n
					default:
						return false
					}
					continue members
				case strings.EqualFold(k, name):
					return false
				}
			}
			if !isASCII(k) {
				return false
			}
		}
	}
	if id != nil && id.kind == '"' {
		r.ID = id.str
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeHead reads the id and usage with encoding/json's rules (tree, when
// not nil, is kept for Judge).
func decodeHead(body []byte, tree *node) (*Response, error) {
	var head struct {
		ID    json.RawMessage `json:"id"`
		Usage json.RawMessage `json:"usage"`
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' || decodeJSON(body, &head) != nil {
		return nil, fmt.Errorf("decoding upstream response: not a JSON object")
	}
	r := &Response{raw: body, tree: tree}
	if len(head.Usage) > 0 {
		if err := json.Unmarshal(head.Usage, &r.Usage); err != nil {
			return nil, fmt.Errorf("decoding upstream response usage: %w", err)
		}
	}
	_ = json.Unmarshal(head.ID, &r.ID)
	return r, nil
}

// load decodes the fields and content blocks, once.
func (r *Response) load() error {
	if r.fields != nil {
		return nil
	}
	var fields object
	if err := decodeJSON(r.raw, &fields); err != nil || fields == nil {
		return fmt.Errorf("decoding upstream response: not a JSON object")
	}
	if c, ok := fields["content"]; ok {
		if err := decodeJSON(c, &r.blocks); err != nil {
			return fmt.Errorf("decoding upstream response content: %w", err)
		}
	}
	r.fields = fields
	return nil
}

// EachText calls fn on each text block and writes back changes.
func (r *Response) EachText(fn TextFunc) error {
	if err := r.load(); err != nil {
		return err
	}
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
	_ = r.load()
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

// StopReason returns the response's stop_reason when it has the shape of
// the API's type names (end_turn, max_tokens, tool_use...), else "": it is
// not judged as text, so a caller passing it on passes no text.
func (r *Response) StopReason() string {
	var s string
	if r.tree != nil {
		s, _ = r.tree.getString("stop_reason")
	} else {
		var v struct {
			StopReason string `json:"stop_reason"`
		}
		_ = json.Unmarshal(r.raw, &v)
		s = v.StopReason
	}
	if !typeName.match(s) {
		return ""
	}
	return s
}

// Judge passes every string the client receives to j, in place: each
// content block by its type (see output.go) and the message's own fields.
// The body is parsed again by the strict decoder (duplicate keys refused),
// and Encode then returns it with what was judged: the original bytes of
// what did not change. A content block type moat does not know is refused
// (*UnknownTypeError) unless relay names it.
func (r *Response) Judge(j OutputJudge, relay Relay) error {
	root := r.tree
	if root == nil {
		var err error
		if root, err = parseTree(r.raw); err != nil {
			return malformed("", "the response is not strict JSON (duplicate keys, invalid UTF-8 or bad syntax)")
		}
	}
	r.tree = nil
	if root.kind != '{' {
		return malformed("", "the response is not an object")
	}
	if c := root.get("content"); c != nil {
		if c.kind != '[' {
			return malformed("content", "not an array")
		}
		for i, b := range c.vals {
			if err := judgeBlock(j, relay, b, "content."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	if err := judgeEnvelope(j, root, ""); err != nil {
		return err
	}
	r.judged = root
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
		return encodeNode(r.judged)
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	blocks, err := encodeJSON(r.blocks)
	if err != nil {
		return nil, fmt.Errorf("encoding response content: %w", err)
	}
	r.fields["content"] = blocks
	return r.encodeFields()
}

// encodeFields writes the response object with its fields' JSON as
// decoded or judged, byte for byte (an encoder would escape '<' and '>'
// where the API does not), in sorted key order.
func (r *Response) encodeFields() ([]byte, error) {
	keys := make([]string, 0, len(r.fields))
	size := 2
	for k, v := range r.fields {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		v := bytes.TrimSpace(r.fields[k])
		if len(v) == 0 {
			return nil, fmt.Errorf("encoding response: field %s has no value", safeName(k))
		}
		out = append(out, v...)
	}
	return append(out, '}'), nil
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
