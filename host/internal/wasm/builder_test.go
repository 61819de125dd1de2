package wasm

import (
	"encoding/binary"
)

// A tiny assembler for hand-written test modules: enough sections to write
// hostile plugins directly as bytes (the module has no wat2wasm).

const (
	tI32 byte = 0x7f
	tI64 byte = 0x7e
)

type tImport struct {
	module, name string
	typ          int
	kind         byte // 0 func, 2 memory
}

type tFunc struct {
	typ    int
	locals []byte // encoded locals vector (without the count prefix)
	nloc   int
	body   []byte // expression without the final end
}

type tExport struct {
	name string
	kind byte
	idx  int
}

type tData struct {
	offset int32
	b      []byte
}

type tModule struct {
	types    [][2][]byte
	imports  []tImport
	funcs    []tFunc
	exports  []tExport
	memory   bool
	memMin   uint32
	memMax   int64 // -1: none
	data     []tData
	table    int // number of funcref slots, 0: no table
	elems    []int
	start    int // -1: none
	nImports int
}

func newModule() *tModule { return &tModule{memMax: -1, start: -1} }

func (m *tModule) typ(params, results []byte) int {
	for i, t := range m.types {
		if string(t[0]) == string(params) && string(t[1]) == string(results) {
			return i
		}
	}
	m.types = append(m.types, [2][]byte{params, results})
	return len(m.types) - 1
}

// importFunc adds a function import; call it before any func.
func (m *tModule) importFunc(module, name string, params, results []byte) int {
	m.imports = append(m.imports, tImport{module: module, name: name, typ: m.typ(params, results)})
	m.nImports++
	return m.nImports - 1
}

// fn adds a function and returns its index.
func (m *tModule) fn(params, results []byte, locals []byte, body ...[]byte) int {
	f := tFunc{typ: m.typ(params, results)}
	for _, l := range locals {
		f.locals = append(f.locals, 1, l)
		f.nloc++
	}
	for _, b := range body {
		f.body = append(f.body, b...)
	}
	m.funcs = append(m.funcs, f)
	return m.nImports + len(m.funcs) - 1
}

func (m *tModule) export(name string, kind byte, idx int) {
	m.exports = append(m.exports, tExport{name, kind, idx})
}

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func vec(n int, items []byte) []byte { return append(uleb(uint64(n)), items...) }

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

// Instruction helpers.
func i32c(v int32) []byte { return append([]byte{0x41}, sleb(int64(v))...) }
func i64c(v int64) []byte { return append([]byte{0x42}, sleb(v)...) }
func call(f int) []byte   { return append([]byte{0x10}, uleb(uint64(f))...) }
func lget(i int) []byte   { return append([]byte{0x20}, uleb(uint64(i))...) }
func lset(i int) []byte   { return append([]byte{0x21}, uleb(uint64(i))...) }

// packed returns i64.const (ptr<<32 | n).
func packed(ptr, n uint32) []byte { return i64c(int64(uint64(ptr)<<32 | uint64(n))) }

func (m *tModule) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, body []byte) {
		out = append(out, id)
		out = append(out, uleb(uint64(len(body)))...)
		out = append(out, body...)
	}
	var b []byte
	for _, t := range m.types {
		b = append(b, 0x60)
		b = append(b, vec(len(t[0]), t[0])...)
		b = append(b, vec(len(t[1]), t[1])...)
	}
	sec(1, vec(len(m.types), b))
	if len(m.imports) > 0 {
		b = nil
		for _, im := range m.imports {
			b = append(b, name(im.module)...)
			b = append(b, name(im.name)...)
			b = append(b, im.kind)
			if im.kind == 2 {
				b = append(b, 0x00, 0x01)
			} else {
				b = append(b, uleb(uint64(im.typ))...)
			}
		}
		sec(2, vec(len(m.imports), b))
	}
	b = nil
	for _, f := range m.funcs {
		b = append(b, uleb(uint64(f.typ))...)
	}
	sec(3, vec(len(m.funcs), b))
	if m.table > 0 {
		sec(4, vec(1, append([]byte{0x70, 0x00}, uleb(uint64(m.table))...)))
	}
	if m.memory {
		if m.memMax >= 0 {
			sec(5, vec(1, append(append([]byte{0x01}, uleb(uint64(m.memMin))...), uleb(uint64(m.memMax))...)))
		} else {
			sec(5, vec(1, append([]byte{0x00}, uleb(uint64(m.memMin))...)))
		}
	}
	b = nil
	for _, e := range m.exports {
		b = append(b, name(e.name)...)
		b = append(b, e.kind)
		b = append(b, uleb(uint64(e.idx))...)
	}
	sec(7, vec(len(m.exports), b))
	if m.start >= 0 {
		sec(8, uleb(uint64(m.start)))
	}
	if len(m.elems) > 0 {
		b = append([]byte{0x00}, i32c(0)...)
		b = append(b, 0x0b)
		var idx []byte
		for _, e := range m.elems {
			idx = append(idx, uleb(uint64(e))...)
		}
		b = append(b, vec(len(m.elems), idx)...)
		sec(9, vec(1, b))
	}
	b = nil
	for _, f := range m.funcs {
		body := append(vec(f.nloc, f.locals), f.body...)
		body = append(body, 0x0b)
		b = append(b, vec(len(body), body)...)
	}
	sec(10, vec(len(m.funcs), b))
	if len(m.data) > 0 {
		b = nil
		for _, d := range m.data {
			b = append(b, 0x00)
			b = append(b, i32c(d.offset)...)
			b = append(b, 0x0b)
			b = append(b, vec(len(d.b), d.b)...)
		}
		sec(11, vec(len(m.data), b))
	}
	return out
}

// abiModule returns a module with memory (1 page), moat_abi_v1 and
// moat_alloc (always 1024) exported; add hooks with hook.
func abiModule() *tModule {
	m := newModule()
	m.memory, m.memMin = true, 1
	m.export("memory", 2, 0)
	return m
}

// finishABI adds the marker and alloc after imports were declared.
func (m *tModule) finishABI() *tModule {
	m.export("moat_abi_v1", 0, m.fn(nil, nil, nil))
	m.export("moat_alloc", 0, m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024)))
	return m
}

// hook adds moat_input (or another export name) with the given body.
func (m *tModule) hook(export string, locals []byte, body ...[]byte) *tModule {
	m.export(export, 0, m.fn([]byte{tI32, tI32}, []byte{tI64}, locals, body...))
	return m
}

// verdictAt places a verdict in data at off and returns the packed result.
func (m *tModule) verdictAt(off uint32, v string) []byte {
	m.data = append(m.data, tData{int32(off), []byte(v)})
	return packed(off, uint32(len(v)))
}
