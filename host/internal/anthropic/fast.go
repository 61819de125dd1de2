package anthropic

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	// goccy/go-json reads and writes upstream responses and events (valid
	// JSON only, see fastUnmarshal); client requests use encoding/json.
	json "github.com/goccy/go-json"
)

// fastRequest is the typed decode of a Messages request: what moat reads,
// in one pass, with raw JSON only where moat may look deeper later.
type fastRequest struct {
	Model     *string         `json:"model"`
	MaxTokens *int64          `json:"max_tokens"`
	Stream    *bool           `json:"stream"`
	System    json.RawMessage `json:"system"`
	Messages  []fastMessage   `json:"messages"`
	Tools     json.RawMessage `json:"tools"`
	Metadata  *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
}

type fastMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
	str     *string
	blocks  []fastBlock
}

type fastBlock struct {
	Type    *string         `json:"type"`
	Text    *string         `json:"text"`
	Content json.RawMessage `json:"content"`
}

// decodeFast decodes and validates a well-formed request. It uses
// encoding/json: a client's bytes are hostile, and goccy/go-json has read
// past its buffer on malformed input (see fastUnmarshal), which no recover
// can contain. ok is false when
// anything is off; the caller then runs the generic decode, which names
// the problem.
func decodeFast(body []byte, opts Options) (*Request, bool) {
	if !utf8.Valid(body) || firstByte(body) != '{' || caseVariantKeys(body) {
		return nil, false
	}
	var f fastRequest
	if err := stdjson.Unmarshal(body, &f); err != nil {
		return nil, false
	}
	if f.Model == nil || *f.Model == "" || len(f.Messages) == 0 {
		return nil, false
	}
	r := &Request{Model: *f.Model, raw: body, fast: &f}
	if !opts.CountTokens {
		if f.MaxTokens == nil || *f.MaxTokens < 1 {
			return nil, false
		}
		r.MaxTokens = *f.MaxTokens
		if f.Stream != nil {
			r.Stream = *f.Stream
		}
	}
	if len(f.System) > 0 && !isNull(f.System) {
		n, err := systemTextBytes(f.System)
		if err != nil {
			return nil, false
		}
		r.textBytes += n
	}
	for i := range f.Messages {
		m := &f.Messages[i]
		if m.Role == nil || (*m.Role != "user" && *m.Role != "assistant") {
			return nil, false
		}
		switch firstByte(m.Content) {
		case '"':
			var s string
			if err := stdjson.Unmarshal(m.Content, &s); err != nil {
				return nil, false
			}
			m.str = &s
			r.textBytes += len(s)
		case '[':
			if err := stdjson.Unmarshal(m.Content, &m.blocks); err != nil {
				return nil, false
			}
			for _, b := range m.blocks {
				if b.Type == nil {
					return nil, false
				}
				switch *b.Type {
				case "text":
					if b.Text == nil {
						return nil, false
					}
					r.textBytes += len(*b.Text)
				case "image", "document":
					r.mediaBlocks++
				default:
					r.textBytes += len(b.Content)
				}
			}
		default:
			return nil, false
		}
	}
	return r, true
}

// eachUserText visits user-authored texts in the same order as the generic
// walk (eachUserTextSlow); it never changes anything.
func (f *fastRequest) eachUserText(fn TextFunc) error {
	for i := range f.Messages {
		m := &f.Messages[i]
		if *m.Role != "user" {
			continue
		}
		if m.str != nil {
			if _, err := fn(*m.str); err != nil {
				return err
			}
			continue
		}
		for _, b := range m.blocks {
			switch *b.Type {
			case "text":
				if _, err := fn(*b.Text); err != nil {
					return err
				}
			case "tool_result":
				if err := eachToolResultText(b.Content, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// eachToolResultText visits the text of a tool_result's content: a string,
// or the text blocks of an array.
func eachToolResultText(c json.RawMessage, fn TextFunc) error {
	switch firstByte(c) {
	case '"':
		var s string
		if err := stdjson.Unmarshal(c, &s); err != nil {
			return nil
		}
		_, err := fn(s)
		return err
	case '[':
		// The same decoding as eachBlockText, so both walks see the same
		// texts.
		var inner []object
		if err := stdjson.Unmarshal(c, &inner); err != nil {
			return nil
		}
		for _, ib := range inner {
			if ib == nil {
				continue
			}
			var typ string
			_ = stdjson.Unmarshal(ib["type"], &typ)
			if typ != "text" {
				continue
			}
			var s string
			if err := stdjson.Unmarshal(ib["text"], &s); err != nil {
				continue
			}
			if _, err := fn(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// fastUnmarshal is goccy/go-json's Unmarshal made safe for untrusted
// bytes. On malformed input (a truncated escape in a key) goccy panicked
// and, under the race detector's checkptr, read past its buffer; so only
// input that encoding/json's validator accepts reaches it (the validator
// costs about a third of goccy's saving), and a panic still becomes an
// error on which the caller falls back to encoding/json.
func fastUnmarshal(data []byte, v any) (err error) {
	if !stdjson.Valid(data) {
		return errors.New("invalid JSON")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fast json decoder: %v", r)
		}
	}()
	return json.Unmarshal(data, v)
}

// decodeJSON decodes with goccy/go-json and, should it fail or panic, with
// encoding/json from a zeroed value: the fast path never changes a verdict.
func decodeJSON(data []byte, v any) error {
	if fastUnmarshal(data, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	return stdjson.Unmarshal(data, v)
}

// encodeJSON encodes with goccy/go-json, falling back to encoding/json.
func encodeJSON(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = stdjson.Marshal(v)
		}
	}()
	if b, err = json.Marshal(v); err != nil {
		return stdjson.Marshal(v)
	}
	return b, nil
}

// readKeys are the keys the typed decode reads. encoding/json matches
// struct fields case-insensitively, so {"content":"A","Content":"B"} would
// let moat judge "B" while the API, which is case-sensitive, uses "A".
var readKeys = [][]byte{
	[]byte(`"model"`), []byte(`"max_tokens"`), []byte(`"stream"`), []byte(`"system"`),
	[]byte(`"messages"`), []byte(`"tools"`), []byte(`"metadata"`), []byte(`"user_id"`),
	[]byte(`"role"`), []byte(`"content"`), []byte(`"type"`), []byte(`"text"`),
}

// caseVariantKeys reports whether the body may hold a key that differs
// from one moat reads only in case (by encoding/json's folding, which is
// bytes.EqualFold); the generic, case-sensitive decode then runs instead.
// It looks at every quoted run of letters followed by a colon, inside
// strings too: a false alarm only costs the slower decode.
func caseVariantKeys(body []byte) bool {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return false
		}
		start := i + j + 1
		end := start
		folded := false
		for end < len(body) {
			c := body[end]
			if c >= 'A' && c <= 'Z' || c >= 0x80 {
				folded = true
			} else if !(c >= 'a' && c <= 'z' || c == '_') {
				break
			}
			end++
		}
		i = start
		if !folded || end >= len(body) || body[end] != '"' {
			continue
		}
		k := end + 1
		for k < len(body) && (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r') {
			k++
		}
		if k >= len(body) || body[k] != ':' {
			continue
		}
		name := body[start:end]
		for _, key := range readKeys {
			if bytes.EqualFold(name, key[1:len(key)-1]) {
				return true
			}
		}
	}
	return false
}
