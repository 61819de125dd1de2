package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// object is a JSON object whose values stay raw until moat needs them, so a
// field moat does not know reaches the client with the same JSON value.
type object map[string]json.RawMessage

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

// TextFunc judges or rewrites one piece of text. It returns the (possibly
// new) text or an error that stops the walk.
type TextFunc func(text string) (string, error)

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("anthropic: encoding a value that always encodes: %v", err))
	}
	return b
}
