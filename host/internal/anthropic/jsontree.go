package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// jsonValue is one JSON value that keeps what a map would lose: the order
// of object keys and the exact text of numbers. Output content is parsed
// into it, judged string by string and encoded again, so what the client
// receives is exactly what was judged.
type jsonValue struct {
	// kind is '{' (object), '[' (array), '"' (string) or 'l' (a number,
	// true, false or null, kept as its text).
	kind byte
	// str is a string's value or a literal's text.
	str string
	// keys are an object's keys, vals its values or an array's items.
	keys []string
	vals []*jsonValue
}

// maxJSONDepth bounds nesting in judged output.
const maxJSONDepth = 128

// errDuplicateKey reports an object with the same key twice: parsers
// disagree on which value wins, so such output is refused.
var errDuplicateKey = errors.New("duplicate key")

// parseJSON parses exactly one JSON value. Duplicate keys are refused.
func parseJSON(data []byte) (*jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (*jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return parseFrom(dec, tok, depth)
}

func parseFrom(dec *json.Decoder, tok json.Token, depth int) (*jsonValue, error) {
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxJSONDepth)
		}
		switch t {
		case '{':
			v := &jsonValue{kind: '{'}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				if seen[k] {
					return nil, fmt.Errorf("%w %s", errDuplicateKey, safeName(k))
				}
				seen[k] = true
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '[':
			v := &jsonValue{kind: '['}
			for dec.More() {
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case string:
		return &jsonValue{kind: '"', str: t}, nil
	case json.Number:
		return &jsonValue{kind: 'l', str: string(t)}, nil
	case bool:
		return &jsonValue{kind: 'l', str: strconv.FormatBool(t)}, nil
	case nil:
		return &jsonValue{kind: 'l', str: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// get returns the value of an object's key, or nil.
func (v *jsonValue) get(key string) *jsonValue {
	if v == nil || v.kind != '{' {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// getString returns an object's string field, or "".
func (v *jsonValue) getString(key string) string {
	if s := v.get(key); s != nil && s.kind == '"' {
		return s.str
	}
	return ""
}

// encode returns the JSON text of v.
func (v *jsonValue) encode() []byte { return v.appendJSON(nil) }

// appendJSON appends the JSON text of v. Strings are written as the API
// writes them: without escaping HTML characters.
func (v *jsonValue) appendJSON(b []byte) []byte {
	switch v.kind {
	case '{':
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = v.vals[i].appendJSON(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, it := range v.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = it.appendJSON(b)
		}
		return append(b, ']')
	case '"':
		return appendJSONString(b, v.str)
	}
	return append(b, v.str...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, U+2028 and U+2029 escaped for JavaScript,
// invalid UTF-8 replaced by U+FFFD (as encoding/json does).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// MapStrings applies fn to every string value of a JSON document (object
// keys are left alone) and returns the document, re-encoded when fn
// changed a string, else as it was.
func MapStrings(data []byte, fn func(string) string) ([]byte, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	if !v.mapStrings(fn) {
		return data, nil
	}
	return v.encode(), nil
}

func (v *jsonValue) mapStrings(fn func(string) string) bool {
	changed := false
	switch v.kind {
	case '"':
		if out := fn(v.str); out != v.str {
			v.str, changed = out, true
		}
	case '{', '[':
		for _, c := range v.vals {
			if c.mapStrings(fn) {
				changed = true
			}
		}
	}
	return changed
}
