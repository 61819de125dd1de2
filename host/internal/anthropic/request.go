package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/moat-gateway/moat/sdk/abi"
)

// MaxOutputTokens is the largest max_tokens moat accepts. No model writes
// more than a few hundred thousand tokens; a larger value is a mistake or
// an attempt to overflow the worst-case cost.
const MaxOutputTokens = 1 << 20

// maxInputTokens caps the input estimate at the largest context window.
const maxInputTokens = 1_000_000

// Request is a decoded Messages request (POST /v1/messages and
// count_tokens), read by the one strict decoder on moat's boundary: every
// value moat judges is the value the API will read, and every text the
// model reads is a segment (see content.go). The zero Request is not
// useful: use DecodeRequest.
type Request struct {
	Model     string
	MaxTokens int64
	Stream    bool

	raw      []byte
	root     *node
	segs     []segRef
	estimate int64
	userID   string
	// systemMessages counts system-role messages inside messages.
	systemMessages int
}

// Options tune request decoding.
type Options struct {
	// CountTokens decodes a count_tokens request (no max_tokens, no stream).
	CountTokens bool
	// RelayBlocks names content block types outside moat's model that are
	// relayed, every string in them judged as text. Any other unknown
	// block type is refused.
	RelayBlocks map[string]bool
}

// DecodeRequest parses and validates a Messages request body. Problems come
// back as a 400 *Error naming the field.
func DecodeRequest(body []byte, opts Options) (*Request, error) {
	root, err := parseTree(body)
	if err != nil {
		return nil, InvalidRequest("request body is not valid JSON: %s", treeErr(err))
	}
	if root.kind != '{' {
		return nil, InvalidRequest("request body must be a JSON object")
	}
	for _, k := range root.keys {
		if known, bad := caseVariant(k, readTopKeys); bad {
			return nil, InvalidRequest("%s: differs from %q only in case; refused", k, known)
		}
	}
	r := &Request{raw: body, root: root}
	model := root.get("model")
	if model == nil {
		return nil, InvalidRequest("model: field required")
	}
	if model.kind != '"' {
		return nil, InvalidRequest("model: must be a string")
	}
	if r.Model = model.str; r.Model == "" {
		return nil, InvalidRequest("model: must not be empty")
	}
	if !opts.CountTokens {
		if err := r.decodeLimits(); err != nil {
			return nil, err
		}
	}
	if md := root.get("metadata"); md != nil && md.kind == '{' {
		if u := md.get("user_id"); u != nil && u.kind == '"' {
			r.userID = u.str
		}
	}
	s := &scanner{relay: opts.RelayBlocks}
	if sys := root.get("system"); sys != nil && sys.kind != 'n' {
		seg := Segment{Kind: abi.KindSystem, Role: "system", Part: PartSystem, Path: "system", Message: -1}
		if err := s.content(sys, seg, false); err != nil {
			return nil, err
		}
	}
	msgs := root.get("messages")
	if msgs == nil {
		return nil, InvalidRequest("messages: field required")
	}
	if msgs.kind != '[' {
		return nil, InvalidRequest("messages: must be an array")
	}
	if len(msgs.vals) == 0 {
		return nil, InvalidRequest("messages: at least one message is required")
	}
	for i, m := range msgs.vals {
		if err := r.decodeMessage(s, i, m); err != nil {
			return nil, err
		}
	}
	for _, name := range toolFields {
		if v := root.get(name); v != nil && v.kind != 'n' {
			seg := Segment{Kind: abi.KindToolDefinition, Part: PartTools, Path: name, Message: -1}
			s.deep(v, seg, false, true, toolSkip)
		}
	}
	r.segs = s.segs
	r.estimate = min(s.textBytes/3+1+s.media, maxInputTokens)
	return r, nil
}

func (r *Request) decodeLimits() error {
	mt := r.root.get("max_tokens")
	if mt == nil {
		return InvalidRequest("max_tokens: field required")
	}
	if mt.kind != '0' {
		return InvalidRequest("max_tokens: must be an integer")
	}
	n, err := strconv.ParseInt(string(mt.raw), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return InvalidRequest("max_tokens: must be at most %d", MaxOutputTokens)
		}
		return InvalidRequest("max_tokens: must be an integer")
	}
	if n < 1 {
		return InvalidRequest("max_tokens: must be greater than or equal to 1")
	}
	if n > MaxOutputTokens {
		return InvalidRequest("max_tokens: must be at most %d", MaxOutputTokens)
	}
	r.MaxTokens = n
	if st := r.root.get("stream"); st != nil && st.kind != 'n' {
		switch st.kind {
		case 't':
			r.Stream = true
		case 'f':
		default:
			return InvalidRequest("stream: must be a boolean")
		}
	}
	return nil
}

func (r *Request) decodeMessage(s *scanner, i int, m *node) error {
	path := "messages." + strconv.Itoa(i)
	if m.kind != '{' {
		return InvalidRequest("%s: must be an object", path)
	}
	for _, k := range m.keys {
		if known, bad := caseVariant(k, []string{"role", "content"}); bad {
			return InvalidRequest("%s.%s: differs from %q only in case; refused", path, k, known)
		}
	}
	roleNode := m.get("role")
	if roleNode == nil {
		return InvalidRequest("%s.role: field required", path)
	}
	if roleNode.kind != '"' {
		return InvalidRequest("%s.role: must be a string", path)
	}
	role := roleNode.str
	seg := Segment{Kind: "text", Role: role, Path: path + ".content", Message: i}
	switch role {
	case "user":
		seg.Part = PartUser
	case "assistant":
		seg.Part = PartAssistant
	case "system":
		seg.Part, seg.Kind = PartSystem, abi.KindSystem
		r.systemMessages++
	default:
		return InvalidRequest("%s.role: must be \"user\", \"assistant\" or \"system\", got %q", path, role)
	}
	content := m.get("content")
	if content == nil {
		return InvalidRequest("%s.content: field required", path)
	}
	return s.content(content, seg, role == "user")
}

// EstimateInputTokens is a deliberately generous estimate of the prompt's
// tokens, used to reserve budget before the call: every string the model
// reads at 3 bytes a token, images by their pixel size, documents by their
// decoded size, remote media at the most the API allows.
func (r *Request) EstimateInputTokens() int64 { return r.estimate }

// SegmentFunc judges or rewrites one piece of request text.
type SegmentFunc func(seg Segment, text string) (string, error)

// Segments returns how many texts the model reads in the request.
func (r *Request) Segments() int { return len(r.segs) }

// EachText calls fn for every text the model reads, in document order:
// system, messages (every block type), then tool definitions. A changed
// text is written back; a change to a Fixed segment is refused with a 400
// (callers that can name the plugin should refuse it first).
func (r *Request) EachText(fn SegmentFunc) error {
	for i := range r.segs {
		sr := &r.segs[i]
		text := sr.text()
		out, err := fn(sr.Segment, text)
		if err != nil {
			return err
		}
		if out == text {
			continue
		}
		if sr.Fixed {
			return InvalidRequest("%s: a plugin changed text that cannot be changed (a signed thinking block or a name in tool JSON); refused", sr.Path)
		}
		sr.n.setString(out)
	}
	return nil
}

func (sr *segRef) text() string {
	if sr.key >= 0 {
		return sr.n.keys[sr.key]
	}
	return sr.n.str
}

// SystemMessages returns how many system-role messages are inside
// messages.
func (r *Request) SystemMessages() int { return r.systemMessages }

// System policies for ApplySystem.
const (
	SystemClient  = "client"
	SystemPin     = "pin"
	SystemPrepend = "prepend"
)

// ApplySystem applies a system-prompt policy: pin replaces whatever the
// client sent with prompt; prepend puts prompt first and keeps the client's
// blocks after it; client leaves it alone. extra, when set, is appended as a
// last text block (the canary instruction). System-role messages inside
// messages are the caller's to refuse under pin (see SystemMessages).
func (r *Request) ApplySystem(policy, prompt, extra string) {
	if policy != SystemPin && policy != SystemPrepend && extra == "" {
		return
	}
	var blocks []*node
	switch policy {
	case SystemPin:
		blocks = []*node{textBlockNode(prompt)}
	case SystemPrepend:
		blocks = append([]*node{textBlockNode(prompt)}, r.systemBlocks()...)
	default:
		blocks = r.systemBlocks()
	}
	if extra != "" {
		blocks = append(blocks, textBlockNode(extra))
	}
	if len(blocks) == 1 && policy == SystemPin && extra == "" {
		r.root.set("system", stringNode(prompt))
		return
	}
	arr := &node{kind: '[', vals: blocks}
	for _, b := range blocks {
		b.parent = arr
	}
	arr.dirty = true
	r.root.set("system", arr)
}

// systemBlocks returns the client's system prompt as text blocks.
func (r *Request) systemBlocks() []*node {
	sys := r.root.get("system")
	switch {
	case sys == nil || sys.kind == 'n':
		return nil
	case sys.kind == '"':
		if sys.str == "" {
			return nil
		}
		return []*node{textBlockNode(sys.str)}
	}
	return append([]*node(nil), sys.vals...)
}

func textBlockNode(s string) *node {
	b := &node{kind: '{', dirty: true}
	b.keys = []string{"type", "text"}
	t, x := stringNode("text"), stringNode(s)
	t.parent, x.parent = b, b
	b.vals = []*node{t, x}
	return b
}

// SetField sets a top-level field to a JSON value.
func (r *Request) SetField(name string, v any) error {
	n, err := rawNode(mustMarshal(v))
	if err != nil {
		return fmt.Errorf("setting field %q: %w", name, err)
	}
	r.root.set(name, n)
	return nil
}

// Field returns a top-level field's raw JSON.
func (r *Request) Field(name string) (json.RawMessage, bool) {
	n := r.root.get(name)
	if n == nil {
		return nil, false
	}
	b, err := n.append(nil)
	if err != nil {
		return nil, false
	}
	return b, true
}

// Encode returns the request body to send upstream: the original bytes when
// nothing changed, else a re-encoding in which every untouched value is the
// same bytes.
func (r *Request) Encode() ([]byte, error) {
	if !r.root.dirty {
		return r.raw, nil
	}
	b, err := r.root.append(make([]byte, 0, len(r.raw)+len(r.raw)/4+256))
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return b, nil
}

// UserID returns metadata.user_id when present.
func (r *Request) UserID() string { return r.userID }

// treeErr shortens the strict decoder's errors for clients.
func treeErr(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		msg := strings.TrimPrefix(se.Err.Error(), "jsontext: ")
		if se.JSONPointer != "" {
			return fmt.Sprintf("%s at %s (byte %d)", msg, se.JSONPointer, se.ByteOffset)
		}
		return fmt.Sprintf("%s (byte %d)", msg, se.ByteOffset)
	}
	if errors.Is(err, errTooDeep) {
		return err.Error()
	}
	return strings.TrimPrefix(err.Error(), "jsontext: ")
}

// mustMarshal encodes a value that always encodes (moat's own values).
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("anthropic: encoding a value that always encodes: %v", err))
	}
	return b
}
