package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// mapJSONStrings rewrites every string value (not object keys) of a JSON
// document through f, keeping the order of keys and elements, and returns
// the document compact. It is how a JSON-mode route runs text validators
// (html-escape, redactors) on the values a client will read, after the
// schema judged the model's raw JSON.
func mapJSONStrings(doc []byte, f func(string) (string, error)) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type frame struct {
		object, wantKey, started bool
	}
	var stack []frame
	var out bytes.Buffer
	// sep writes the separator before a value or key in the current frame.
	sep := func() {
		if len(stack) == 0 {
			return
		}
		fr := &stack[len(stack)-1]
		if fr.object && !fr.wantKey {
			out.WriteByte(':')
			return
		}
		if fr.started {
			out.WriteByte(',')
		}
		fr.started = true
	}
	// done marks a value written in the current frame.
	done := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading JSON: %w", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				sep()
				out.WriteByte(byte(v))
				stack = append(stack, frame{object: v == '{', wantKey: v == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				out.WriteByte(byte(v))
				done()
			}
		case string:
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey
			sep()
			s := v
			if !isKey {
				if s, err = f(v); err != nil {
					return nil, err
				}
			}
			b, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			out.Write(b)
			if isKey {
				stack[len(stack)-1].wantKey = false
			} else {
				done()
			}
		default:
			sep()
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out.Write(b)
			done()
		}
	}
	if dec.More() || len(stack) != 0 {
		return nil, fmt.Errorf("reading JSON: unexpected end or trailing data")
	}
	return out.Bytes(), nil
}
