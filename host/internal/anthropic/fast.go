package anthropic

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"

	// goccy/go-json reads the head of upstream responses and events (valid
	// JSON only, see fastUnmarshal); client requests use the strict
	// decoder of jsontree.go.
	json "github.com/goccy/go-json"
)

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
