package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"

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

// parseTree decodes body strictly into a tree.
func parseTree(body []byte) (*node, error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(body),
		jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	p := treeParser{dec: dec, body: body}
	root, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return nil, err
	}
	return root, nil
}

type treeParser struct {
	dec  *jsontext.Decoder
	body []byte
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
	tok, err := p.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	n := &node{kind: byte(tok.Kind())}
	switch n.kind {
	case '{':
		for p.dec.PeekKind() != '}' {
			kt, err := p.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := kt.String()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			n.keys = append(n.keys, name)
			n.vals = append(n.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
	case '[':
		for p.dec.PeekKind() != ']' {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			n.vals = append(n.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
	case '"':
		n.str = tok.String()
	case 0:
		return nil, fmt.Errorf("unexpected end of input")
	}
	n.raw = p.body[s:int(p.dec.InputOffset())]
	return n, nil
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
