package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Response is a decoded non-streaming Messages response. Fields moat does
// not read stay raw, so every field reaches the client.
type Response struct {
	Usage Usage
	ID    string

	raw []byte
	// tree is the body as DecodeResponse's strict parse read it (nil when
	// that parse failed); Judge judges it in place, then Encode writes it.
	tree   *node
	judged bool
}

// DecodeResponse parses a Messages response body: its id and usage with
// encoding/json's rules, and the whole body with the strict decoder, which
// Text, StopReason and Judge read.
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

// Text returns the concatenated text of the response's text blocks, read
// from the strict parse; an error when the body is not strict JSON or its
// content is not an array of blocks.
func (r *Response) Text() (string, error) {
	if r.tree == nil {
		return "", notStrict()
	}
	c := r.tree.get("content")
	if c == nil {
		return "", nil
	}
	if c.kind != '[' {
		return "", malformed("content", "not an array")
	}
	var b strings.Builder
	for i, blk := range c.vals {
		if blk.kind != '{' {
			return "", malformed("content."+strconv.Itoa(i), "a content block is not an object")
		}
		if typ, _ := blk.getString("type"); typ != "text" {
			continue
		}
		t, ok := blk.getString("text")
		if !ok {
			return "", malformed("content."+strconv.Itoa(i)+".text", "not a string")
		}
		b.WriteString(t)
	}
	return b.String(), nil
}

// StopReason returns the response's stop_reason when it has the shape of
// the API's type names (end_turn, max_tokens, tool_use...), else "": it is
// not judged as text, so a caller passing it on passes no text.
func (r *Response) StopReason() string {
	s, _ := r.tree.getString("stop_reason")
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
	if r.judged {
		return fmt.Errorf("anthropic: a response is judged once")
	}
	root := r.tree
	if root == nil {
		return notStrict()
	}
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
	r.judged = true
	return nil
}

// Encode returns the body for the client: the original bytes when it was
// not judged, else the judged tree (the original bytes of what did not
// change). An error means the changed body could not be encoded; the
// original must not be sent in its place.
func (r *Response) Encode() ([]byte, error) {
	if !r.judged {
		return r.raw, nil
	}
	return encodeNode(r.tree)
}

// notStrict refuses a body the strict decoder did not read.
func notStrict() error {
	return malformed("", "the response is not strict JSON (duplicate keys, invalid UTF-8 or bad syntax)")
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
