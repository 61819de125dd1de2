package soak

// LoopMarker in a user text makes the hostile plugin of LoopModule spin
// forever on that request.
const LoopMarker = "#LP#"

// LoopModule returns a minimal hand-assembled plugin module (ABI v1, no
// imports) whose input hook allows every text, except that it loops
// forever when the request holds LoopMarker. moat must stop it at the
// plugin's timeout_ms.
//
// In WebAssembly text form:
//
//	(memory (export "memory") 2)
//	(func (export "moat_abi_v1"))
//	(func (export "moat_alloc") (param $n i32) (result i32)
//	  (if (result i32) (i32.gt_u (local.get $n) (i32.const 65536))
//	    (then (i32.const 0)) (else (i32.const 1024))))
//	(func (export "moat_input") (param $p i32) (param $len i32) (result i64) (local $i i32)
//	  (block $done (loop $scan
//	    (br_if $done (i32.gt_s (local.get $i) (i32.sub (local.get $len) (i32.const 4))))
//	    (if (i32.eq (i32.load (i32.add (local.get $p) (local.get $i))) (i32.const MARKER))
//	      (then (loop $forever (br $forever))))
//	    (local.set $i (i32.add (local.get $i) (i32.const 1)))
//	    (br $scan)))
//	  (i64.const 0))
func LoopModule() []byte {
	m := []byte(LoopMarker)
	marker := int64(int32(uint32(m[0]) | uint32(m[1])<<8 | uint32(m[2])<<16 | uint32(m[3])<<24))

	const (
		i32, i64 = 0x7f, 0x7e
		opBlock  = 0x02
		opLoop   = 0x03
		opIf     = 0x04
		opElse   = 0x05
		opEnd    = 0x0b
		opBr     = 0x0c
		opBrIf   = 0x0d
		opGet    = 0x20
		opSet    = 0x21
		opLoad   = 0x28
		opI32    = 0x41
		opI64    = 0x42
		opEq     = 0x46
		opGtS    = 0x4a
		opGtU    = 0x4b
		opAdd    = 0x6a
		opSub    = 0x6b
		empty    = 0x40
	)
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	i32c := func(v int64) []byte { return append([]byte{opI32}, sleb(v)...) }
	section := func(id byte, body []byte) []byte {
		return cat([]byte{id}, uleb(uint64(len(body))), body)
	}
	name := func(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }
	code := func(locals []byte, body ...[]byte) []byte {
		b := cat(locals, cat(body...), []byte{opEnd})
		return cat(uleb(uint64(len(b))), b)
	}

	types := section(1, cat([]byte{3},
		[]byte{0x60, 0, 0},                // () -> ()
		[]byte{0x60, 1, i32, 1, i32},      // (i32) -> i32
		[]byte{0x60, 2, i32, i32, 1, i64}, // (i32, i32) -> i64
	))
	funcs := section(3, []byte{3, 0, 1, 2})
	memory := section(5, []byte{1, 0x00, 2}) // one memory, min 2 pages, no max
	exports := section(7, cat([]byte{4},
		name("memory"), []byte{0x02, 0},
		name("moat_abi_v1"), []byte{0x00, 0},
		name("moat_alloc"), []byte{0x00, 1},
		name("moat_input"), []byte{0x00, 2},
	))
	marker1 := code([]byte{0})
	alloc := code([]byte{0},
		[]byte{opGet, 0}, i32c(65536), []byte{opGtU},
		[]byte{opIf, i32}, i32c(0), []byte{opElse}, i32c(1024), []byte{opEnd},
	)
	input := code([]byte{1, 1, i32}, // one local i32: $i (index 2)
		[]byte{opBlock, empty, opLoop, empty},
		[]byte{opGet, 2, opGet, 1}, i32c(4), []byte{opSub, opGtS, opBrIf, 1},
		[]byte{opGet, 0, opGet, 2, opAdd, opLoad, 0, 0}, i32c(marker), []byte{opEq},
		[]byte{opIf, empty, opLoop, empty, opBr, 0, opEnd, opEnd},
		[]byte{opGet, 2}, i32c(1), []byte{opAdd, opSet, 2, opBr, 0},
		[]byte{opEnd, opEnd},
		[]byte{opI64, 0},
	)
	codes := section(10, cat([]byte{3}, marker1, alloc, input))
	return cat([]byte{0x00, 'a', 's', 'm', 0x01, 0, 0, 0}, types, funcs, memory, exports, codes)
}

// uleb is unsigned LEB128.
func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

// sleb is signed LEB128.
func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}
