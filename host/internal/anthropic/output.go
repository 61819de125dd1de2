package anthropic

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moat-gateway/moat/host/internal/jsonstr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// This file is the model of what the client receives: every content block
// type of a Messages response (anthropic-sdk-go v2 ContentBlockUnion), and
// how each string in it is treated. A string is either judged (passed to
// the output chain, which may rewrite it), an identifier (relayed after a
// shape check: type, id, name, ...) or opaque data (relayed after a
// character-set check: signatures and encrypted content, which the client
// must send back unchanged and cannot read). Identifiers and opaque data
// are still shown to OutputJudge.Check, which refuses keys.

// Field is one string of a response that reaches the client.
type Field struct {
	// Kind is what the string is (an abi.Kind* constant).
	Kind string
	// Path locates it, in the API's error-path form
	// ("content.2.input.query").
	Path string
	// Text is the string as the upstream sent it.
	Text string
	// Key is set when the string is an object key inside tool input.
	Key bool
}

// OutputJudge decides on the strings of a response.
type OutputJudge interface {
	// Judge returns what the client receives in place of f.Text; an error
	// refuses the response.
	Judge(f Field) (string, error)
	// Check is shown a string relayed as sent (an identifier or opaque
	// data); an error refuses the response.
	Check(f Field) error
}

// UnknownTypeError reports a content block, delta or event type that moat
// does not know and that can carry text: it is refused, not relayed
// unjudged.
type UnknownTypeError struct {
	// What is "content block", "delta" or "event".
	What string
	// Name is the type.
	Name string
}

func (e *UnknownTypeError) Error() string {
	name := "an unknown type (not an API type name)"
	if typeName.match(e.Name) {
		name = fmt.Sprintf("unknown type %q", e.Name)
	}
	article := "a"
	if strings.HasPrefix(e.What, "e") {
		article = "an"
	}
	return fmt.Sprintf("upstream sent %s %s of %s; moat refuses output it cannot judge (upstream.relay_unknown_types relays named types)", article, e.What, name)
}

// safeName quotes a name from the upstream for an error message.
func safeName(s string) string {
	if typeName.match(s) {
		return strconv.Quote(s)
	}
	return "(not an API type name)"
}

// MalformedOutputError reports output whose shape moat refuses.
type MalformedOutputError struct {
	Path   string
	Reason string
}

func (e *MalformedOutputError) Error() string {
	if e.Path == "" {
		return "upstream sent malformed output: " + e.Reason
	}
	return fmt.Sprintf("upstream sent malformed output at %s: %s", e.Path, e.Reason)
}

func malformed(path, format string, args ...any) error {
	return &MalformedOutputError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Relay names the unknown content block, delta and event types relayed
// without judging (config upstream.relay_unknown_types). A nil Relay
// relays none.
type Relay map[string]bool

// blockKinds maps every content block type of the API to the kind its
// judged strings have. Nested citations are abi.KindCitation, tool input
// abi.KindToolInput.
var blockKinds = map[string]string{
	"text":                                   abi.KindText,
	"thinking":                               abi.KindThinking,
	"redacted_thinking":                      abi.KindThinking,
	"tool_use":                               abi.KindToolInput,
	"server_tool_use":                        abi.KindToolInput,
	"web_search_tool_result":                 abi.KindServerToolResult,
	"web_fetch_tool_result":                  abi.KindServerToolResult,
	"code_execution_tool_result":             abi.KindServerToolResult,
	"bash_code_execution_tool_result":        abi.KindServerToolResult,
	"text_editor_code_execution_tool_result": abi.KindServerToolResult,
	"tool_search_tool_result":                abi.KindServerToolResult,
	"container_upload":                       abi.KindServerToolResult,
}

// KnownBlockType reports whether moat models a content block type.
func KnownBlockType(t string) bool { _, ok := blockKinds[t]; return ok }

// deltaTypes are the content_block_delta types moat models.
var deltaTypes = map[string]bool{
	"text_delta": true, "thinking_delta": true, "signature_delta": true,
	"input_json_delta": true, "citations_delta": true,
}

// KnownDeltaType reports whether moat models a delta type.
func KnownDeltaType(t string) bool { return deltaTypes[t] }

// KnownEventType reports whether moat models a stream event type.
func KnownEventType(t string) bool {
	switch t {
	case EventMessageStart, EventContentBlockStart, EventContentBlockDelta, EventContentBlockStop,
		EventMessageDelta, EventMessageStop, EventPing, EventError:
		return true
	}
	return false
}

// identKeys hold identifiers: enums, ids and names, which a client
// dispatches on and moat must not rewrite. They are shape-checked.
var identKeys = map[string]bool{
	"type": true, "id": true, "tool_use_id": true, "name": true, "file_id": true,
	"media_type": true, "error_code": true, "tool_name": true, "file_type": true,
	"toolset_name": true, "tool_id": true,
	// The message's own.
	"role": true, "model": true, "stop_reason": true,
}

// opaqueKeys hold encrypted or signed data the client cannot read and
// must send back unchanged.
var opaqueKeys = map[string]bool{
	"signature": true, "encrypted_content": true, "encrypted_index": true, "encrypted_stdout": true,
}

// walkCtx is what the walker knows about the strings below a node.
type walkCtx struct {
	block string
	kind  string
	// envelope is set for the message's own fields: an identifier-shaped
	// string is checked, anything else judged.
	envelope bool
	// input is set inside tool input: every string and key is judged.
	input bool
	// depth 1 is the block object itself.
	depth int
}

type walker struct{ j OutputJudge }

// judgeBlock judges every string of one content block in place.
func judgeBlock(j OutputJudge, relay Relay, b *node, path string) error {
	if b == nil || b.kind != '{' {
		return malformed(path, "a content block is not an object")
	}
	t := b.get("type")
	if t == nil || t.kind != '"' {
		return malformed(path, "a content block has no type")
	}
	kind, ok := blockKinds[t.str]
	if !ok {
		if relay[t.str] {
			return (&walker{j: j}).checkAll(b, path)
		}
		return &UnknownTypeError{What: "content block", Name: t.str}
	}
	w := &walker{j: j}
	return w.node(b, path, "", walkCtx{block: t.str, kind: kind})
}

func join(path, key string) string {
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "." + key
}

func (w *walker) node(v *node, path, key string, c walkCtx) error {
	switch v.kind {
	case '{':
		return w.object(v, path, c)
	case '[':
		for i, it := range v.vals {
			if err := w.node(it, join(path, strconv.Itoa(i)), key, c); err != nil {
				return err
			}
		}
		return nil
	case '"':
		return w.str(v, path, key, c)
	}
	return nil
}

func (w *walker) object(v *node, path string, c walkCtx) error {
	base64 := !c.input && v.stringAt("type") == "base64"
	// Judged keys may change: seen refuses two that become one. Other
	// keys are as the strict parser read them, without duplicates.
	var seen map[string]bool
	if c.input {
		seen = make(map[string]bool, len(v.keys))
	}
	for i, k := range v.keys {
		p := join(path, k)
		if c.input {
			nk, err := w.j.Judge(Field{Kind: c.kind, Path: p, Text: k, Key: true})
			if err != nil {
				return err
			}
			if seen[nk] {
				return malformed(path, "a judged key duplicates another")
			}
			if nk != k {
				v.keys[i], k = nk, nk
				v.touch()
			}
			seen[k] = true
		} else if !keyShape.match(k) {
			return malformed(path, "an object key is not a field name")
		}
		cc := c
		cc.depth = c.depth + 1
		child := v.vals[i]
		switch {
		case c.input:
		case c.depth == 0 && k == "input" && (c.block == "tool_use" || c.block == "server_tool_use"):
			cc.input, cc.kind = true, abi.KindToolInput
		case k == "citations" || k == "citation":
			cc.kind = abi.KindCitation
		case k == "data" && (base64 || (c.depth == 0 && c.block == "redacted_thinking")):
			if err := w.opaque(child, p); err != nil {
				return err
			}
			continue
		}
		if err := w.node(child, p, k, cc); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) str(v *node, path, key string, c walkCtx) error {
	switch {
	case c.input:
	case c.envelope && key != "explanation" && identShape.match(v.str):
		return w.j.Check(Field{Kind: c.kind, Path: path, Text: v.str})
	case identKeys[key]:
		if !identShape.match(v.str) {
			return malformed(path, "identifier has an unexpected shape")
		}
		return w.j.Check(Field{Kind: c.kind, Path: path, Text: v.str})
	case opaqueKeys[key]:
		return w.opaque(v, path)
	}
	if v.str == "" {
		return nil // nothing to judge
	}
	out, err := w.j.Judge(Field{Kind: c.kind, Path: path, Text: v.str})
	if err != nil {
		return err
	}
	if out != v.str {
		v.setString(out)
	}
	return nil
}

// opaque checks opaque data: a string of base64-like characters.
func (w *walker) opaque(v *node, path string) error {
	if v.kind != '"' {
		return malformed(path, "opaque data is not a string")
	}
	if !opaqueShape.match(v.str) {
		return malformed(path, "opaque data holds characters outside base64")
	}
	return w.j.Check(Field{Kind: "opaque", Path: path, Text: v.str})
}

// checkAll shows every string of a relayed unknown value to Check.
func (w *walker) checkAll(v *node, path string) error {
	switch v.kind {
	case '{':
		for i, k := range v.keys {
			p := join(path, k)
			if err := w.j.Check(Field{Kind: "relayed", Path: p, Text: k, Key: true}); err != nil {
				return err
			}
			if err := w.checkAll(v.vals[i], p); err != nil {
				return err
			}
		}
	case '[':
		for i, it := range v.vals {
			if err := w.checkAll(it, join(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case '"':
		return w.j.Check(Field{Kind: "relayed", Path: path, Text: v.str})
	}
	return nil
}

// judgeToolInput judges every key and string value of a tool input.
func judgeToolInput(j OutputJudge, v *node, path string) error {
	w := &walker{j: j}
	return w.node(v, path, "", walkCtx{kind: abi.KindToolInput, input: true, depth: 1})
}

// judgeCitation judges one citation object.
func judgeCitation(j OutputJudge, v *node, path string) error {
	if v.kind != '{' {
		return malformed(path, "a citation is not an object")
	}
	w := &walker{j: j}
	return w.object(v, path, walkCtx{block: "text", kind: abi.KindCitation, depth: 2})
}

// judgeEnvelope judges the strings of a message's own fields, or of a
// message_start or message_delta event: stop_details.explanation (a
// refusal's explanation) always, any other string unless it has the shape
// of an identifier (ids, the model, the stop reason, the service tier, a
// timestamp), which is checked instead. Content is not walked here.
func judgeEnvelope(j OutputJudge, m *node, path string) error {
	w := &walker{j: j}
	c := walkCtx{block: "message", kind: abi.KindText, depth: 1, envelope: true}
	for i, k := range m.keys {
		if k == "content" {
			continue
		}
		if !keyShape.match(k) {
			return malformed(path, "an object key is not a field name")
		}
		if err := w.node(m.vals[i], join(path, k), k, c); err != nil {
			return err
		}
	}
	return nil
}

// stringAt returns member key's string value, or "".
func (n *node) stringAt(key string) string {
	s, _ := n.getString(key)
	return s
}

// encodeNode encodes a judged tree: the original bytes of what did not
// change, fresh JSON for what did. A string a plugin made invalid UTF-8
// fails here and refuses the output.
func encodeNode(n *node) ([]byte, error) {
	b, err := n.append(nil)
	if err != nil {
		return nil, malformed("", "judged output cannot be encoded")
	}
	return b, nil
}

// objectNode builds a new object.
func objectNode(keys []string, vals ...*node) *node {
	return &node{kind: '{', keys: keys, vals: vals, dirty: true}
}

// numberNode builds a new integer.
func numberNode(i int) *node { return &node{kind: '0', raw: []byte(strconv.Itoa(i))} }

// MapStrings applies fn to every string value of a JSON document (object
// keys are left alone) and returns the document, re-encoded where fn
// changed a string, else as it was.
func MapStrings(data []byte, fn func(string) string) ([]byte, error) {
	v, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	mapStrings(v, fn)
	if !v.dirty {
		return data, nil
	}
	return encodeNode(v)
}

func mapStrings(n *node, fn func(string) string) {
	switch n.kind {
	case '"':
		if out := fn(n.str); out != n.str {
			n.setString(out)
		}
	case '{', '[':
		for _, c := range n.vals {
			mapStrings(c, fn)
		}
	}
}

// appendJSONString appends s as a JSON string, markup left as the API
// writes it.
func appendJSONString(b []byte, s string) []byte { return jsonstr.Append(b, s, false) }
