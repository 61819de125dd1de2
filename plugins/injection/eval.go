package injection

import (
	"encoding/json"
	"fmt"
	"os"
)

// Evaluate runs the detector with cfg over labelled texts and returns the
// share of attacks flagged (recall) and of benign texts flagged (false
// positives), each in [0, 1]. An empty set gives a rate of 0.
func Evaluate(attacks, benign []string, cfg Config) (attackRate, benignRate float64, err error) {
	cfg, err = cfg.normalized()
	if err != nil {
		return 0, 0, fmt.Errorf("evaluating: %w", err)
	}
	return flaggedRate(attacks, cfg), flaggedRate(benign, cfg), nil
}

func flaggedRate(texts []string, cfg Config) float64 {
	if len(texts) == 0 {
		return 0
	}
	n := 0
	for _, t := range texts {
		if Score(t).Score >= cfg.Threshold {
			n++
		}
	}
	return float64(n) / float64(len(texts))
}

// LoadTexts reads an evaluation set: a JSON array of strings, or of objects
// whose "prompt" or "text" field holds the text.
func LoadTexts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading eval set: %w", err)
	}
	return ParseTexts(b)
}

// ParseTexts parses the content of an evaluation set (see LoadTexts).
func ParseTexts(b []byte) ([]string, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parsing eval set: want a JSON array: %w", err)
	}
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			Prompt *string `json:"prompt"`
			Text   *string `json:"text"`
		}
		if err := json.Unmarshal(r, &o); err != nil {
			return nil, fmt.Errorf("parsing eval set: item %d: want a string or an object with \"prompt\" or \"text\"", i)
		}
		switch {
		case o.Prompt != nil:
			out = append(out, *o.Prompt)
		case o.Text != nil:
			out = append(out, *o.Text)
		default:
			return nil, fmt.Errorf("parsing eval set: item %d: object has no \"prompt\" or \"text\"", i)
		}
	}
	return out, nil
}
