package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// object is a JSON object whose values stay raw until moat needs them, so a
// field moat does not know reaches the upstream with the same JSON value.
type object map[string]json.RawMessage

// Request is a decoded Messages request (POST /v1/messages and
// count_tokens). Only what moat reads is decoded; everything else is carried
// as raw JSON. The zero Request is not useful: use DecodeRequest.
type Request struct {
	Model     string
	MaxTokens int64
	Stream    bool

	raw []byte
	// fast is the typed first decode; fields and messages, the generic
	// model that re-encodes, are built from raw only when something changes.
	fast     *fastRequest
	fields   object
	messages []*message
	dirty    bool
	// textBytes counts the bytes of text in messages and system, for
	// estimates; mediaBlocks counts images and documents.
	textBytes   int
	mediaBlocks int
}

type message struct {
	fields object
	role   string
	// str is the content when it is a JSON string.
	str    *string
	blocks []object
	dirty  bool
}

// Options tune request decoding.
type Options struct {
	// CountTokens decodes a count_tokens request (no max_tokens, no stream).
	CountTokens bool
}

// DecodeRequest parses and validates a Messages request body. Problems come
// back as a 400 *Error naming the field.
//
// A typed decode reads the body once; the generic model that keeps every
// field for re-encoding is built only if the request is changed. When the
// typed decode fails, the generic one runs to name the bad field.
func DecodeRequest(body []byte, opts Options) (*Request, error) {
	if r, ok := decodeFast(body, opts); ok {
		return r, nil
	}
	return decodeSlow(body, opts)
}

// decodeSlow builds the generic model, with precise errors.
func decodeSlow(body []byte, opts Options) (*Request, error) {
	if !utf8.Valid(body) {
		return nil, InvalidRequest("request body is not valid UTF-8")
	}
	var fields object
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, InvalidRequest("request body is not a valid JSON object: %s", jsonErr(err))
	}
	if fields == nil {
		return nil, InvalidRequest("request body must be a JSON object")
	}
	r := &Request{raw: body, fields: fields}
	if err := decodeString(fields, "model", &r.Model, true); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, InvalidRequest("model: must not be empty")
	}
	if !opts.CountTokens {
		raw, ok := fields["max_tokens"]
		if !ok {
			return nil, InvalidRequest("max_tokens: field required")
		}
		if err := json.Unmarshal(raw, &r.MaxTokens); err != nil {
			return nil, InvalidRequest("max_tokens: must be an integer")
		}
		if r.MaxTokens < 1 {
			return nil, InvalidRequest("max_tokens: must be greater than or equal to 1")
		}
		if raw, ok := fields["stream"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &r.Stream); err != nil {
				return nil, InvalidRequest("stream: must be a boolean")
			}
		}
	}
	if raw, ok := fields["system"]; ok && !isNull(raw) {
		n, err := systemTextBytes(raw)
		if err != nil {
			return nil, err
		}
		r.textBytes += n
	}
	raw, ok := fields["messages"]
	if !ok {
		return nil, InvalidRequest("messages: field required")
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, InvalidRequest("messages: must be an array")
	}
	if len(msgs) == 0 {
		return nil, InvalidRequest("messages: at least one message is required")
	}
	r.messages = make([]*message, len(msgs))
	for i, m := range msgs {
		msg, err := r.decodeMessage(i, m)
		if err != nil {
			return nil, err
		}
		r.messages[i] = msg
	}
	return r, nil
}

func (r *Request) decodeMessage(i int, raw json.RawMessage) (*message, error) {
	var fields object
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, InvalidRequest("messages.%d: must be an object", i)
	}
	m := &message{fields: fields}
	if err := decodeString(fields, "role", &m.role, true); err != nil {
		return nil, InvalidRequest("messages.%d.%s", i, err.(*Error).Message)
	}
	if m.role != "user" && m.role != "assistant" {
		return nil, InvalidRequest("messages.%d.role: must be \"user\" or \"assistant\", got %q", i, m.role)
	}
	content, ok := fields["content"]
	if !ok {
		return nil, InvalidRequest("messages.%d.content: field required", i)
	}
	switch firstByte(content) {
	case '"':
		var s string
		if err := json.Unmarshal(content, &s); err != nil {
			return nil, InvalidRequest("messages.%d.content: %s", i, jsonErr(err))
		}
		m.str = &s
		r.textBytes += len(s)
	case '[':
		var blocks []object
		if err := json.Unmarshal(content, &blocks); err != nil {
			return nil, InvalidRequest("messages.%d.content: must be a string or an array of content blocks", i)
		}
		for j, b := range blocks {
			if b == nil {
				return nil, InvalidRequest("messages.%d.content.%d: must be an object", i, j)
			}
			var typ string
			if err := decodeString(b, "type", &typ, true); err != nil {
				return nil, InvalidRequest("messages.%d.content.%d.%s", i, j, err.(*Error).Message)
			}
			switch typ {
			case "text":
				var s string
				if err := decodeString(b, "text", &s, true); err != nil {
					return nil, InvalidRequest("messages.%d.content.%d.%s", i, j, err.(*Error).Message)
				}
				r.textBytes += len(s)
			case "image", "document":
				r.mediaBlocks++
			default:
				r.textBytes += len(b["content"]) + len(b["input"])
			}
		}
		m.blocks = blocks
	default:
		return nil, InvalidRequest("messages.%d.content: must be a string or an array of content blocks", i)
	}
	return m, nil
}

// EstimateInputTokens is a deliberately generous estimate of the prompt's
// tokens, used to reserve budget before the call: text at 3 bytes a token,
// tools as their JSON, images and documents at a flat 2,000 each.
func (r *Request) EstimateInputTokens() int64 {
	tools := 0
	if r.fast != nil {
		tools = len(r.fast.Tools)
	} else {
		tools = len(r.fields["tools"])
	}
	n := r.textBytes + tools
	return int64(n/3+1) + int64(r.mediaBlocks)*2000
}

// TextFunc judges or rewrites one piece of user-authored text. It returns the
// (possibly new) text or an error that stops the walk.
type TextFunc func(text string) (string, error)

// EachUserText calls fn for every user-authored text: string contents, text
// blocks, and text inside tool results, in message order. Changed texts are
// written back.
func (r *Request) EachUserText(fn TextFunc) error {
	if r.fields != nil {
		return r.eachUserTextSlow(fn)
	}
	var outs []string
	changed := false
	err := r.fast.eachUserText(func(s string) (string, error) {
		out, err := fn(s)
		if err != nil {
			return "", err
		}
		outs = append(outs, out)
		changed = changed || out != s
		return out, nil
	})
	if err != nil || !changed {
		return err
	}
	if err := r.materialize(); err != nil {
		return err
	}
	i := 0
	return r.eachUserTextSlow(func(s string) (string, error) {
		if i >= len(outs) {
			return "", fmt.Errorf("anthropic: typed and generic walks disagree")
		}
		out := outs[i]
		i++
		return out, nil
	})
}

// materialize builds the generic model from the raw body.
func (r *Request) materialize() error {
	if r.fields != nil {
		return nil
	}
	slow, err := decodeSlow(r.raw, Options{CountTokens: true})
	if err != nil {
		return err
	}
	r.fields, r.messages = slow.fields, slow.messages
	return nil
}

func (r *Request) eachUserTextSlow(fn TextFunc) error {
	for _, m := range r.messages {
		if m.role != "user" {
			continue
		}
		if m.str != nil {
			out, err := fn(*m.str)
			if err != nil {
				return err
			}
			if out != *m.str {
				*m.str = out
				m.dirty, r.dirty = true, true
			}
			continue
		}
		for _, b := range m.blocks {
			changed, err := eachBlockText(b, fn, true)
			if err != nil {
				return err
			}
			if changed {
				m.dirty, r.dirty = true, true
			}
		}
	}
	return nil
}

// eachBlockText rewrites a text block's text or a tool_result's content.
func eachBlockText(b object, fn TextFunc, toolResults bool) (bool, error) {
	var typ string
	_ = json.Unmarshal(b["type"], &typ)
	switch typ {
	case "text":
		return rewriteString(b, "text", fn)
	case "tool_result":
		if !toolResults {
			return false, nil
		}
		c, ok := b["content"]
		if !ok {
			return false, nil
		}
		switch firstByte(c) {
		case '"':
			return rewriteString(b, "content", fn)
		case '[':
			var inner []object
			if err := json.Unmarshal(c, &inner); err != nil {
				return false, nil
			}
			any := false
			for _, ib := range inner {
				if ib == nil {
					continue
				}
				changed, err := eachBlockText(ib, fn, false)
				if err != nil {
					return false, err
				}
				any = any || changed
			}
			if any {
				b["content"] = mustMarshal(inner)
			}
			return any, nil
		}
	}
	return false, nil
}

// rewriteString passes the string at key through fn and writes back a
// change. A value that is not a string is left alone (the walk skips it).
func rewriteString(b object, key string, fn TextFunc) (bool, error) {
	var s string
	if err := json.Unmarshal(b[key], &s); err != nil {
		return false, nil
	}
	out, err := fn(s)
	if err != nil || out == s {
		return false, err
	}
	b[key] = mustMarshal(out)
	return true, nil
}

// System policies for SetSystem.
const (
	SystemClient  = "client"
	SystemPin     = "pin"
	SystemPrepend = "prepend"
)

// ApplySystem applies a system-prompt policy: pin replaces whatever the
// client sent with prompt; prepend puts prompt first and keeps the client's
// blocks after it; client leaves it alone. extra, when set, is appended as a
// last text block (the canary instruction).
func (r *Request) ApplySystem(policy, prompt, extra string) {
	if policy != SystemPin && policy != SystemPrepend && extra == "" {
		return
	}
	if err := r.materialize(); err != nil {
		return
	}
	var blocks []json.RawMessage
	switch policy {
	case SystemPin:
		blocks = []json.RawMessage{textBlock(prompt)}
	case SystemPrepend:
		blocks = append([]json.RawMessage{textBlock(prompt)}, r.systemBlocks()...)
	default:
		if extra == "" {
			return
		}
		blocks = r.systemBlocks()
	}
	if extra != "" {
		blocks = append(blocks, textBlock(extra))
	}
	if len(blocks) == 1 && policy == SystemPin && extra == "" {
		r.fields["system"] = mustMarshal(prompt)
	} else {
		r.fields["system"] = mustMarshal(blocks)
	}
	r.dirty = true
}

// systemBlocks returns the client's system prompt as text blocks.
func (r *Request) systemBlocks() []json.RawMessage {
	raw, ok := r.fields["system"]
	if !ok || isNull(raw) {
		return nil
	}
	if firstByte(raw) == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		if s == "" {
			return nil
		}
		return []json.RawMessage{textBlock(s)}
	}
	var blocks []json.RawMessage
	_ = json.Unmarshal(raw, &blocks)
	return blocks
}

// SetField sets a top-level field to a JSON value.
func (r *Request) SetField(name string, v any) {
	if err := r.materialize(); err != nil {
		return
	}
	r.fields[name] = mustMarshal(v)
	r.dirty = true
}

// Field returns a top-level field's raw JSON.
func (r *Request) Field(name string) (json.RawMessage, bool) {
	if err := r.materialize(); err != nil {
		return nil, false
	}
	v, ok := r.fields[name]
	return v, ok
}

// Encode returns the request body to send upstream: the original bytes when
// nothing changed, else a re-encoding in which every untouched value is the
// same JSON.
func (r *Request) Encode() ([]byte, error) {
	if !r.dirty {
		return r.raw, nil
	}
	for i, m := range r.messages {
		if !m.dirty {
			continue
		}
		if m.str != nil {
			m.fields["content"] = mustMarshal(*m.str)
		} else {
			m.fields["content"] = mustMarshal(m.blocks)
		}
		_ = i
	}
	msgs := make([]json.RawMessage, len(r.messages))
	for i, m := range r.messages {
		msgs[i] = mustMarshal(m.fields)
	}
	r.fields["messages"] = mustMarshal(msgs)
	b, err := json.Marshal(r.fields)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return b, nil
}

// UserID returns metadata.user_id when present.
func (r *Request) UserID() string {
	if r.fields == nil {
		if r.fast.Metadata != nil {
			return r.fast.Metadata.UserID
		}
		return ""
	}
	raw, ok := r.fields["metadata"]
	if !ok {
		return ""
	}
	var md struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal(raw, &md)
	return md.UserID
}

func systemTextBytes(raw json.RawMessage) (int, error) {
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, InvalidRequest("system: %s", jsonErr(err))
		}
		return len(s), nil
	case '[':
		var blocks []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return 0, InvalidRequest("system: must be a string or an array of text blocks")
		}
		n := 0
		for _, b := range blocks {
			n += len(b.Text)
		}
		return n, nil
	}
	return 0, InvalidRequest("system: must be a string or an array of text blocks")
}

func textBlock(s string) json.RawMessage {
	return mustMarshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"text", s})
}

func decodeString(o object, key string, dst *string, required bool) error {
	raw, ok := o[key]
	if !ok {
		if required {
			return InvalidRequest("%s: field required", key)
		}
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return InvalidRequest("%s: must be a string", key)
	}
	return nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func isNull(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("anthropic: encoding a value that always encodes: %v", err))
	}
	return b
}

// jsonErr shortens encoding/json errors for clients.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if e, ok := err.(*json.SyntaxError); ok {
		se = e
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("wrong type at %q: expected %s", e.Field, e.Type)
	}
	return err.Error()
}
