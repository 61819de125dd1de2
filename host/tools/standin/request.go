package standin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// request is what the stand-in needs from a Messages or count_tokens body.
type request struct {
	Model     string
	MaxTokens int64
	Stream    bool
	// TextBytes is the byte length of all text in system and messages.
	TextBytes int
	// LastUser is the text of the last user message (text blocks joined).
	LastUser string
	// System is the text of the system prompt (text blocks joined).
	System string
}

// requestError is a 400 invalid_request_error (or 404 for unknown models)
// with the API's "field: problem" message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badField(format string, args ...any) *requestError {
	return &requestError{status: 400, msg: fmt.Sprintf(format, args...)}
}

type wireRequest struct {
	Model     *string          `json:"model"`
	MaxTokens *json.Number     `json:"max_tokens"`
	Messages  *[]wireMessage   `json:"messages"`
	System    json.RawMessage  `json:"system"`
	Stream    *json.RawMessage `json:"stream"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireBlock struct {
	Type    string          `json:"type"`
	Text    string          `json:"text"`
	Content json.RawMessage `json:"content"`
}

// parseRequest decodes and validates a Messages body (needMaxTokens) or a
// count_tokens body. It never panics on any input.
func parseRequest(body []byte, needMaxTokens bool) (request, error) {
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return request{}, badField("%s: Input should be a valid %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return request{}, badField("There was an error parsing the body of your request: %v", err)
	}
	if dec.More() {
		return request{}, badField("There was an error parsing the body of your request: trailing data after the JSON object")
	}
	var r request
	if w.Model == nil || *w.Model == "" {
		return request{}, badField("model: Field required")
	}
	r.Model = *w.Model
	if needMaxTokens {
		if w.MaxTokens == nil {
			return request{}, badField("max_tokens: Field required")
		}
		n, err := strconv.ParseInt(w.MaxTokens.String(), 10, 64)
		if err != nil {
			return request{}, badField("max_tokens: Input should be a valid integer")
		}
		if n < 1 {
			return request{}, badField("max_tokens: Input should be greater than or equal to 1")
		}
		r.MaxTokens = n
	}
	if w.Stream != nil {
		switch string(bytes.TrimSpace(*w.Stream)) {
		case "true":
			r.Stream = true
		case "false", "null":
		default:
			return request{}, badField("stream: Input should be a valid boolean")
		}
	}
	if w.Messages == nil {
		return request{}, badField("messages: Field required")
	}
	msgs := *w.Messages
	if len(msgs) == 0 {
		return request{}, badField("messages: List should have at least 1 item after validation, not 0")
	}
	if len(w.System) > 0 && string(w.System) != "null" {
		n, sys, err := contentText(w.System)
		if err != nil {
			return request{}, badField("system: %v", err)
		}
		r.TextBytes += n
		r.System = sys
	}
	for i, m := range msgs {
		if m.Role != "user" && m.Role != "assistant" && m.Role != "system" {
			return request{}, badField("messages.%d.role: Input should be 'user', 'assistant' or 'system'", i)
		}
		if len(m.Content) == 0 || string(m.Content) == "null" {
			return request{}, badField("messages.%d.content: Field required", i)
		}
		n, text, err := contentText(m.Content)
		if err != nil {
			return request{}, badField("messages.%d.content: %v", i, err)
		}
		r.TextBytes += n
		switch m.Role {
		case "user":
			r.LastUser = text
		case "system":
			// A system-role message (what Claude Code sends) adds to the
			// instructions, as the API reads it.
			r.System += text
		}
	}
	return r, nil
}

// contentText measures a string-or-blocks content value and returns the text
// of its text blocks, concatenated.
func contentText(raw json.RawMessage) (int, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		//lint:ignore ST1005 the stand-in answers in the API's own wording
		return 0, "", errors.New("Field required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			//lint:ignore ST1005 the stand-in answers in the API's own wording
			return 0, "", errors.New("Input should be a valid string")
		}
		return len(s), s, nil
	case '[':
		var blocks []wireBlock
		if err := json.Unmarshal(raw, &blocks); err != nil {
			//lint:ignore ST1005 the stand-in answers in the API's own wording
			return 0, "", errors.New("Input should be a valid list of content blocks")
		}
		total := 0
		var text []byte
		for i, b := range blocks {
			if b.Type == "" {
				return 0, "", fmt.Errorf("%d.type: Field required", i)
			}
			switch b.Type {
			case "text":
				total += len(b.Text)
				text = append(text, b.Text...)
			case "tool_result":
				if len(b.Content) > 0 && string(b.Content) != "null" {
					n, _, err := contentText(b.Content)
					if err != nil {
						return 0, "", fmt.Errorf("%d.content: %v", i, err)
					}
					total += n
				}
			}
		}
		return total, string(text), nil
	default:
		//lint:ignore ST1005 the stand-in answers in the API's own wording
		return 0, "", errors.New("Input should be a valid list")
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "slice", "array":
		return "list"
	case "struct", "map", "ptr":
		return "dictionary"
	case "bool":
		return "boolean"
	default:
		return "value"
	}
}

// EstimateTokens is the stand-in's deterministic token count for n bytes of
// text: one token per four bytes, rounded up, at least one.
func EstimateTokens(n int) int {
	if n <= 0 {
		return 1
	}
	return (n + 3) / 4
}
