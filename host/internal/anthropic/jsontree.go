package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
)

// node is one JSON value of a client's request, decoded by the one strict
// decoder on moat's boundary (parseTree). Every value keeps its original
// bytes, so what moat forwards is either those bytes or a re-encoding of
// exactly the values moat judged.
//
// The decoder refuses what could make two readers see two documents:
// duplicate object names (compared after unescaping, so "\u0063ontent" is
// "content"), invalid UTF-8 and unpaired surrogates. Case variants of the
// names moat reads are refused by the content model (see content.go).
type node struct {
	kind byte   // '{', '[', '"', '0' (number), 't', 'f', 'n'
	raw  []byte // the value's original bytes
	str  string // the decoded string, for kind '"'

	keys []string // object member names, in order
	vals []*node  // object member values (parallel to keys) or array elements

	parent *node // the enclosing object or array; nil at the root
	dirty  bool  // the value (or something inside it) changed
}

// touch marks n and every value enclosing it as changed.
func (n *node) touch() {
	for ; n != nil && !n.dirty; n = n.parent {
		n.dirty = true
	}
}

// maxDepth bounds nesting; the API's documents are shallow, and a deep
// body is a cheap way to make a recursive walk expensive.
const maxDepth = 128

var errTooDeep = errors.New("nesting exceeds 128 levels")

// strict are the decoder's options: duplicate names and invalid UTF-8
// are errors.
var strict = []jsontext.Options{jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false)}

// pooledDecoder is a strict decoder and the buffer it reads, kept between
// parses (a decoder and its name sets cost more to build than a small
// event costs to read).
type pooledDecoder struct {
	dec jsontext.Decoder
	buf bytes.Buffer
	// keys and vals are the parser's stacks of the members and elements
	// of the objects and arrays being read (see treeParser.value).
	keys []string
	vals []*node
}

var decoders = sync.Pool{New: func() any { return new(pooledDecoder) }}

// maxPooledStack bounds the members a pooled decoder's stacks keep room
// for between parses.
const maxPooledStack = 4096

// parseTree decodes body strictly into a tree.
func parseTree(body []byte) (*node, error) {
	pd := decoders.Get().(*pooledDecoder)
	// A bytes.Buffer is read in place, without a copy.
	pd.buf = *bytes.NewBuffer(body)
	pd.dec.Reset(&pd.buf, strict...)
	p := treeParser{dec: &pd.dec, body: body, keys: pd.keys[:0], vals: pd.vals[:0]}
	defer func() {
		// Forget body and the tree before the decoder goes back to the
		// pool.
		pd.buf = bytes.Buffer{}
		pd.dec.Reset(&pd.buf, strict...)
		pd.keys, pd.vals = p.keys[:0], p.vals[:0]
		if cap(pd.keys)+cap(pd.vals) > maxPooledStack {
			pd.keys, pd.vals = nil, nil // one huge document's, not every parse's
		}
		clear(pd.keys[:cap(pd.keys)])
		clear(pd.vals[:cap(pd.vals)])
		decoders.Put(pd)
	}()
	root, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := pd.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return nil, err
	}
	return root, nil
}

type treeParser struct {
	dec   *jsontext.Decoder
	body  []byte
	nodes chunks[node]

	// keys and vals are stacks: an object or array pushes its members
	// there while it is read, then takes them (take) from keySlab and
	// valSlab.
	keys    []string
	vals    []*node
	keySlab chunks[string]
	valSlab chunks[*node]
}

// chunks hands out slices of larger allocations: 8 elements, then twice
// as many each time up to a limit (or what one slice needs). The values
// of one tree live and die together, so this saves most of the
// per-value allocations.
type chunks[T any] struct {
	free []T
	size int
}

// take returns n zeroed elements, capped: an append to them copies them
// rather than write over the next.
func (c *chunks[T]) take(n, limit int) []T {
	if len(c.free) < n {
		c.size = min(max(c.size*2, 8), limit)
		c.free = make([]T, max(c.size, n))
	}
	s := c.free[:n:n]
	c.free = c.free[n:]
	return s
}

// newNode returns a zeroed node from the parser's current chunk (up to
// 256 nodes).
func (p *treeParser) newNode(kind byte) *node {
	n := &p.nodes.take(1, 256)[0]
	n.kind = kind
	return n
}

// take returns the members pushed since keyMark and mark (an array's
// elements: since mark, no keys) as slices of the parser's
// chunks, capped (an append to one copies it rather than write over the
// next), and pops them.
func (p *treeParser) take(keyMark, mark int, object bool) (keys []string, vals []*node) {
	n := len(p.vals) - mark
	if n == 0 {
		return nil, nil
	}
	if object {
		keys = p.keySlab.take(n, 512)
		copy(keys, p.keys[keyMark:])
		p.keys = p.keys[:keyMark]
	}
	vals = p.valSlab.take(n, 512)
	copy(vals, p.vals[mark:])
	p.vals = p.vals[:mark]
	return keys, vals
}

// start returns the offset of the next value: the decoder's offset past
// any whitespace, ',' and ':'.
func (p *treeParser) start() int {
	i := int(p.dec.InputOffset())
	for i < len(p.body) {
		switch p.body[i] {
		case ' ', '\t', '\r', '\n', ',', ':':
			i++
			continue
		}
		break
	}
	return i
}

func (p *treeParser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	s := p.start()
	if p.dec.PeekKind() == '"' {
		// A string is read as a value: checked once by the decoder, its
		// bytes aliasing body, and copied once (see unquote).
		raw, err := p.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		str, err := unquote(raw)
		if err != nil {
			return nil, err
		}
		n := p.newNode('"')
		n.str, n.raw = str, p.body[s:int(p.dec.InputOffset())]
		return n, nil
	}
	tok, err := p.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	n := p.newNode(byte(tok.Kind()))
	switch n.kind {
	case '{':
		keyMark, mark := len(p.keys), len(p.vals)
		for p.dec.PeekKind() != '}' {
			raw, err := p.dec.ReadValue()
			if err != nil {
				return nil, err
			}
			name, err := unquoteName(raw)
			if err != nil {
				return nil, err
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			p.keys = append(p.keys, name)
			p.vals = append(p.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
		n.keys, n.vals = p.take(keyMark, mark, true)
	case '[':
		mark := len(p.vals)
		for p.dec.PeekKind() != ']' {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			p.vals = append(p.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
		_, n.vals = p.take(0, mark, false)
	case 0:
		return nil, fmt.Errorf("unexpected end of input")
	}
	n.raw = p.body[s:int(p.dec.InputOffset())]
	return n, nil
}

// unquote decodes a string the decoder has read and checked (valid UTF-8,
// valid escapes, surrogates paired): without an escape, its bytes between
// the quotes are the string; with escapes, the runs between them are
// copied as they are and each escape decoded (unescape).
func unquote(raw jsontext.Value) (string, error) {
	if len(raw) < 2 {
		return "", errors.New("not a string")
	}
	body := raw[1 : len(raw)-1]
	i := bytes.IndexByte(body, '\\')
	if i < 0 {
		return string(body), nil
	}
	if b, ok := unescape(make([]byte, 0, len(body)), body, i); ok {
		if len(b) == 0 {
			return "", nil
		}
		// b is this string's own new buffer, never written again.
		return unsafe.String(&b[0], len(b)), nil
	}
	b, err := jsontext.AppendUnquote(nil, raw)
	return string(b), err
}

// unescape appends the decoded form of body (a checked JSON string without
// its quotes) whose first backslash is at i; ok is false on anything but
// the escapes JSON allows (the caller then asks jsontext).
func unescape(dst, body []byte, i int) ([]byte, bool) {
	for {
		dst = append(dst, body[:i]...)
		body = body[i:]
		if len(body) < 2 {
			return dst, false
		}
		switch c := body[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
			body = body[2:]
		case 'b':
			dst, body = append(dst, '\b'), body[2:]
		case 'f':
			dst, body = append(dst, '\f'), body[2:]
		case 'n':
			dst, body = append(dst, '\n'), body[2:]
		case 'r':
			dst, body = append(dst, '\r'), body[2:]
		case 't':
			dst, body = append(dst, '\t'), body[2:]
		case 'u':
			r, ok := hex4(body[2:])
			if !ok {
				return dst, false
			}
			body = body[6:]
			if utf16.IsSurrogate(r) {
				// The decoder refused an unpaired one: a low half follows.
				if len(body) < 6 || body[0] != '\\' || body[1] != 'u' {
					return dst, false
				}
				r2, ok := hex4(body[2:])
				if !ok {
					return dst, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return dst, false
				}
				body = body[6:]
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
		if i = bytes.IndexByte(body, '\\'); i < 0 {
			return append(dst, body...), true
		}
	}
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unquoteName is unquote for member names, returning the names of the
// Messages API without allocating.
func unquoteName(raw jsontext.Value) (string, error) {
	switch string(raw) {
	case `"type"`:
		return "type", nil
	case `"text"`:
		return "text", nil
	case `"role"`:
		return "role", nil
	case `"content"`:
		return "content", nil
	case `"model"`:
		return "model", nil
	case `"messages"`:
		return "messages", nil
	case `"max_tokens"`:
		return "max_tokens", nil
	case `"stream"`:
		return "stream", nil
	case `"system"`:
		return "system", nil
	case `"id"`:
		return "id", nil
	case `"usage"`:
		return "usage", nil
	case `"index"`:
		return "index", nil
	case `"delta"`:
		return "delta", nil
	case `"input_tokens"`:
		return "input_tokens", nil
	case `"output_tokens"`:
		return "output_tokens", nil
	case `"stop_reason"`:
		return "stop_reason", nil
	case `"stop_sequence"`:
		return "stop_sequence", nil
	case `"content_block"`:
		return "content_block", nil
	case `"message"`:
		return "message", nil
	case `"name"`:
		return "name", nil
	case `"input"`:
		return "input", nil
	case `"metadata"`:
		return "metadata", nil
	case `"tools"`:
		return "tools", nil
	}
	return unquote(raw)
}

// get returns the value of member key, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != '{' {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// getString returns member key's string value and whether it is a string.
func (n *node) getString(key string) (string, bool) {
	v := n.get(key)
	if v == nil || v.kind != '"' {
		return "", false
	}
	return v.str, true
}

// set replaces or appends member key.
func (n *node) set(key string, v *node) {
	v.parent = n
	n.touch()
	for i, k := range n.keys {
		if k == key {
			n.vals[i] = v
			return
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

// setString replaces a string node's value.
func (n *node) setString(s string) {
	n.str = s
	n.dirty = false
	n.touch()
}

// stringNode returns a new string node.
func stringNode(s string) *node { return &node{kind: '"', str: s, dirty: true} }

// rawNode returns a node for already-encoded JSON (from json.Marshal).
func rawNode(b []byte) (*node, error) {
	n, err := parseTree(b)
	if err != nil {
		return nil, err
	}
	n.dirty = true
	return n, nil
}

// append writes the value: its original bytes when unchanged, else a
// fresh encoding with untouched members copied as they came.
func (n *node) append(b []byte) ([]byte, error) {
	if !n.dirty {
		return append(b, n.raw...), nil
	}
	var err error
	switch n.kind {
	case '{':
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = jsontext.AppendQuote(b, k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = n.vals[i].append(b); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case '[':
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = v.append(b); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case '"':
		return jsontext.AppendQuote(b, n.str)
	}
	return append(b, n.raw...), nil
}
