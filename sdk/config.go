package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// Config decodes a plugin's config table (JSON) into a T once per distinct
// config, not on every call: the host sends the same config bytes with
// every request, and Get compares them with the last ones. Prepare, when
// set, runs once after each decode to derive state (compiled patterns, a
// Phrases matcher) from the T. The zero Config is ready to use; it is safe
// for concurrent use.
type Config[T any] struct {
	// Prepare, when non-nil, finishes a freshly decoded T (defaults,
	// derived state). An error fails Get the same way as a decode error.
	Prepare func(*T) error

	mu  sync.Mutex
	raw []byte
	val *T
	err error
}

// Get returns the request's config decoded into a T. An absent config
// decodes as the zero T (then Prepare runs on it). The T is shared by every
// call with the same config: treat it as read-only.
func (c *Config[T]) Get(r Request) (*T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.val != nil && bytes.Equal(c.raw, r.Config) {
		return c.val, c.err
	}
	v := new(T)
	var err error
	if len(r.Config) > 0 && !bytes.Equal(r.Config, []byte("null")) {
		if jerr := json.Unmarshal(r.Config, v); jerr != nil {
			err = fmt.Errorf("decoding plugin config: %w", jerr)
		}
	}
	if err == nil && c.Prepare != nil {
		if perr := c.Prepare(v); perr != nil {
			err = fmt.Errorf("preparing plugin config: %w", perr)
		}
	}
	c.raw, c.val, c.err = bytes.Clone(r.Config), v, err
	if c.raw == nil {
		c.raw = []byte{}
	}
	return v, err
}
