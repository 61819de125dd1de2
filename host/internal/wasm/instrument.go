package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file rewrites a plugin's binary before it is compiled so that a guest
// in an endless loop can be stopped without wazero's WithCloseOnContextDone
// (see RATIONALE.md): every function entry and every loop header charges a
// cost (the byte length of the function or loop body) to a fuel counter, and
// when the counter runs out the guest calls the host function moat.__tick,
// which checks the call's deadline (trapping the guest when it has passed)
// and returns a new budget. Calling the host leaves native code, so the Go
// garbage collector can also stop the world there.
//
// The counter lives in a new mutable global between functions, and in a new
// local of each function while it runs: the entry loads the global into the
// local, loop headers charge the local (a register, not memory: a tight
// loop pays a subtraction, a compare and a branch per iteration), and the
// local is stored back to the global before every call to another guest
// function and before every way out of the function (return, a branch to
// its outermost label, its final end), and reloaded after the call. The
// accounting is exact: the same fuel is charged as with the global alone,
// so a runaway guest ticks just as often.
//
// A call inside a loop, even one that rarely runs, makes wazero's register
// allocator keep the loop's values in stack slots on every iteration (a
// value live across a call is spilled, and a loop variable is spilled
// where it is defined): the AssemblyScript SDK's UTF-8 decoder, with its
// tick inside the loop, ran about 25% slower than with an out-of-fuel path
// that did not call. So the tick goes outside the loop. Each loop
//
//	loop BT ... end
//
// becomes
//
//	block BT              ;; $done: the loop's results leave through it
//	  loop                ;; $again
//	    block             ;; $refuel
//	      loop BT         ;; the original loop
//	        fuel -= weight; br_if $refuel (fuel < 0)
//	        ...           ;; its body, branch labels past it shifted by 3
//	      end
//	      br $done
//	    end
//	    fuel = tick()
//	    br $again         ;; back into the loop, at its header
//	  end
//	  unreachable
//	end
//
// A loop whose block type takes parameters (they are on the stack at its
// header, and $refuel could not take them) keeps the tick inside:
// fuel -= weight; if fuel < 0 { fuel = tick() }.
//
// The same rewrite bounds the guest's call depth: a second new global counts
// nested calls, every call and call_indirect of a guest function increments
// it before and decrements it after, and past maxCallDepth the guest calls
// the host function moat.__overflow, which ends the call as a stack
// overflow. Without it wazero grows the guest's native stack up to 400 MB
// before trapping (RATIONALE.md, the plugin runtime). Calls of imported (host)
// functions need neither: they cannot nest guest frames or run guest code.
//
// The rewrite also clamps the declared maximum of the module's memory to the
// plugin's cap, and drops custom sections (names, debug info), whose function
// indices or code offsets it would otherwise have to fix up.

// Names of the host functions the rewrite imports.
const (
	tickModule   = "moat"
	tickName     = "__tick"
	overflowName = "__overflow"
)

// maxCallDepth bounds nested guest calls (RATIONALE.md, the plugin runtime: a Go guest
// decoding JSON nests a few hundred deep; 10000 frames cost wazero at most a
// few MB of stack).
const maxCallDepth = 10000

// fuelBudget is the fuel a tick hands out: about this many bytes of guest
// code run between two returns to the host. A charge counts a loop's whole
// body, though an iteration usually runs one path through it, so real code
// runs far less than the budget: with 1 MiB, scaffolded plugins and the
// AssemblyScript SDK's example tick every 15-30 us, the tightest endless
// loop every 34-47 us (RATIONALE.md, the plugin runtime); the GC and the deadline
// wait about that long at most.
const fuelBudget = 1 << 20

// chargeWeight is added to every charge: the code the charge itself adds
// runs too, so that the tightest loop (br 0, 2 bytes) is charged its cost.
const chargeWeight = 12

// errMalformed marks a binary the rewriter cannot parse.
var errMalformed = errors.New("malformed module")

// moduleInfo is what the rewrite learned about the original module.
type moduleInfo struct {
	// imports lists the original imports as "module.name" with their kinds.
	imports []importInfo
	// exports maps export names to their kind (0 func, 1 table, 2 mem, 3 global).
	exports map[string]byte
}

type importInfo struct {
	module, name string
	kind         byte
}

// reader is a cursor over a byte slice that records the first error.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", errMalformed, r.pos, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.fail("length %d past the end", n)
		return nil
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() uint32 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift == 28 && c > 0x0f {
			r.fail("u32 overflows")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return uint32(v)
		}
	}
}

// skipLEB skips a LEB128 of at most maxBytes bytes.
func (r *reader) skipLEB(maxBytes int) {
	for i := 0; i < maxBytes; i++ {
		if r.byte() < 0x80 || r.err != nil {
			return
		}
	}
	r.fail("LEB128 too long")
}

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func appendU32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte { return append(appendU32(b, uint32(len(s))), s...) }

// section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// instrument rewrites wasm as described at the top of this file, with the
// memory maximum clamped to maxPages.
func instrument(wasm []byte, maxPages uint32) ([]byte, *moduleInfo, error) {
	return instrumentFuel(wasm, maxPages, true)
}

// instrumentFuel is instrument with the fuel checks optional (off only in
// benchmarks that compare interruption schemes).
func instrumentFuel(wasm []byte, maxPages uint32, fuel bool) ([]byte, *moduleInfo, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, nil, fmt.Errorf("%w: not a WebAssembly binary", errMalformed)
	}
	if !bytes.Equal(wasm[4:8], []byte{1, 0, 0, 0}) {
		return nil, nil, fmt.Errorf("%w: not a core module of version 1 (a component?)", errMalformed)
	}
	r := &reader{b: wasm, pos: 8}
	sections := map[byte][]byte{}
	last := byte(0)
	order := map[byte]int{secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secGlobal: 6,
		secExport: 7, secStart: 8, secElement: 9, secDataCount: 10, secCode: 11, secData: 12}
	for r.pos < len(r.b) && r.err == nil {
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			break
		}
		if id == secCustom {
			continue
		}
		o, ok := order[id]
		if !ok {
			return nil, nil, fmt.Errorf("%w: unsupported section id %d", errMalformed, id)
		}
		if o <= int(last) {
			return nil, nil, fmt.Errorf("%w: section id %d out of order or repeated", errMalformed, id)
		}
		last = byte(o)
		sections[id] = body
	}
	if r.err != nil {
		return nil, nil, r.err
	}

	info := &moduleInfo{exports: map[string]byte{}}
	// Types: append () -> i32 for the tick.
	var typeCount uint32
	var typeBody []byte
	if b, ok := sections[secType]; ok {
		tr := &reader{b: b}
		typeCount = tr.u32()
		if tr.err != nil {
			return nil, nil, tr.err
		}
		typeBody = b[tr.pos:]
	}
	params, err := paramCounts(typeBody, typeCount)
	if err != nil {
		return nil, nil, err
	}
	tickType := typeCount
	overflowType := typeCount + 1
	newTypes := appendU32(nil, typeCount+2)
	newTypes = append(newTypes, typeBody...)
	newTypes = append(newTypes, 0x60, 0x00, 0x01, 0x7f) // () -> i32
	newTypes = append(newTypes, 0x60, 0x00, 0x00)       // () -> ()

	// Imports: record them, count imported functions, append the tick.
	var nImportFuncs uint32
	newImports := []byte{}
	{
		var count uint32
		var entries []byte
		if b, ok := sections[secImport]; ok {
			ir := &reader{b: b}
			count = ir.u32()
			start := ir.pos
			for i := uint32(0); i < count && ir.err == nil; i++ {
				imp := importInfo{module: ir.name(), name: ir.name()}
				imp.kind = ir.byte()
				switch imp.kind {
				case 0:
					ir.u32()
					nImportFuncs++
				case 1:
					ir.byte()
					skipLimits(ir)
				case 2:
					skipLimits(ir)
				case 3:
					ir.byte()
					ir.byte()
				default:
					ir.fail("unknown import kind %d", imp.kind)
				}
				info.imports = append(info.imports, imp)
			}
			if ir.err != nil {
				return nil, nil, ir.err
			}
			entries = b[start:ir.pos]
		}
		newImports = appendU32(newImports, count+2)
		newImports = append(newImports, entries...)
		newImports = appendName(newImports, tickModule)
		newImports = appendName(newImports, tickName)
		newImports = append(newImports, 0x00)
		newImports = appendU32(newImports, tickType)
		newImports = appendName(newImports, tickModule)
		newImports = appendName(newImports, overflowName)
		newImports = append(newImports, 0x00)
		newImports = appendU32(newImports, overflowType)
	}
	for _, imp := range info.imports {
		if imp.kind != 0 {
			// Refused by the caller with a clear message; globals would
			// also shift the fuel global's index.
			return nil, info, nil
		}
	}
	fx := fixups{tick: nImportFuncs, overflow: nImportFuncs + 1, imports: nImportFuncs, typeParams: params}
	remap := func(idx uint32) uint32 {
		if idx >= nImportFuncs {
			return idx + 2
		}
		return idx
	}

	// Globals: rewrite init expressions (ref.func), append the fuel and
	// depth globals.
	var newGlobals []byte
	{
		var count uint32
		var out []byte
		if b, ok := sections[secGlobal]; ok {
			gr := &reader{b: b}
			count = gr.u32()
			for i := uint32(0); i < count && gr.err == nil; i++ {
				out = append(out, gr.bytes(2)...) // valtype, mut
				out = rewriteExpr(gr, out, remap)
			}
			if gr.err != nil {
				return nil, nil, gr.err
			}
		}
		fx.fuel, fx.depth = count, count+1
		newGlobals = appendU32(nil, count+2)
		newGlobals = append(newGlobals, out...)
		newGlobals = append(newGlobals, 0x7f, 0x01, 0x41)
		newGlobals = appendS32(newGlobals, fuelBudget)
		newGlobals = append(newGlobals, 0x0b)
		newGlobals = append(newGlobals, 0x7f, 0x01, 0x41, 0x00, 0x0b) // depth = 0
	}

	// Memory: clamp the maximum.
	var newMemory []byte
	if b, ok := sections[secMemory]; ok {
		mr := &reader{b: b}
		count := mr.u32()
		newMemory = appendU32(nil, count)
		for i := uint32(0); i < count && mr.err == nil; i++ {
			flags := mr.byte()
			if flags > 1 {
				return nil, nil, fmt.Errorf("%w: shared or 64-bit memory is not supported", errMalformed)
			}
			min := mr.u32()
			max := maxPages
			if flags == 1 {
				if m := mr.u32(); m < max {
					max = m
				}
			}
			if min > maxPages {
				return nil, nil, fmt.Errorf("memory needs at least %d pages (%d KiB), over the plugin's cap of %d pages", min, min*64, maxPages)
			}
			newMemory = append(newMemory, 0x01)
			newMemory = appendU32(newMemory, min)
			newMemory = appendU32(newMemory, max)
		}
		if mr.err != nil {
			return nil, nil, mr.err
		}
	}

	// Exports.
	var newExports []byte
	if b, ok := sections[secExport]; ok {
		er := &reader{b: b}
		count := er.u32()
		newExports = appendU32(nil, count)
		for i := uint32(0); i < count && er.err == nil; i++ {
			name := er.name()
			kind := er.byte()
			idx := er.u32()
			if _, dup := info.exports[name]; dup {
				er.fail("duplicate export %q", name)
			}
			info.exports[name] = kind
			if kind == 0 {
				idx = remap(idx)
			}
			newExports = appendName(newExports, name)
			newExports = append(newExports, kind)
			newExports = appendU32(newExports, idx)
		}
		if er.err != nil {
			return nil, nil, er.err
		}
	}

	// Start.
	var newStart []byte
	if b, ok := sections[secStart]; ok {
		sr := &reader{b: b}
		idx := sr.u32()
		if sr.err != nil {
			return nil, nil, sr.err
		}
		newStart = appendU32(nil, remap(idx))
	}

	// Elements.
	var newElems []byte
	if b, ok := sections[secElement]; ok {
		var err error
		if newElems, err = rewriteElements(b, remap); err != nil {
			return nil, nil, err
		}
	}

	// Functions: each one's parameter count (its first new local's index
	// starts after them).
	var funcParams []uint32
	if b, ok := sections[secFunction]; ok {
		fr := &reader{b: b}
		count := fr.u32()
		if int(count) > len(b) {
			return nil, nil, fmt.Errorf("%w: function section too long", errMalformed)
		}
		funcParams = make([]uint32, count)
		for i := range funcParams {
			t := fr.u32()
			if fr.err == nil && t >= typeCount {
				fr.fail("function %d has type %d of %d", i, t, typeCount)
			}
			if fr.err != nil {
				return nil, nil, fr.err
			}
			funcParams[i] = params[t]
		}
	}

	// Code.
	var newCode []byte
	if b, ok := sections[secCode]; ok {
		cr := &reader{b: b}
		count := cr.u32()
		if cr.err == nil && int(count) != len(funcParams) {
			return nil, nil, fmt.Errorf("%w: %d function bodies for %d functions", errMalformed, count, len(funcParams))
		}
		newCode = appendU32(nil, count)
		for i := uint32(0); i < count && cr.err == nil; i++ {
			size := cr.u32()
			body := cr.bytes(int(size))
			if cr.err != nil {
				break
			}
			fn, err := rewriteBody(body, funcParams[i], remap, fx, fuel)
			if err != nil {
				return nil, nil, fmt.Errorf("function %d: %w", i, err)
			}
			newCode = appendU32(newCode, uint32(len(fn)))
			newCode = append(newCode, fn...)
		}
		if cr.err != nil {
			return nil, nil, cr.err
		}
	}

	out := append([]byte(nil), wasm[:8]...)
	put := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	put(secType, newTypes)
	put(secImport, newImports)
	for _, id := range []byte{secFunction, secTable} {
		if b, ok := sections[id]; ok {
			put(id, b)
		}
	}
	if newMemory != nil {
		put(secMemory, newMemory)
	}
	put(secGlobal, newGlobals)
	if newExports != nil {
		put(secExport, newExports)
	}
	if newStart != nil {
		put(secStart, newStart)
	}
	if newElems != nil {
		put(secElement, newElems)
	}
	if b, ok := sections[secDataCount]; ok {
		put(secDataCount, b)
	}
	if newCode != nil {
		put(secCode, newCode)
	}
	if b, ok := sections[secData]; ok {
		put(secData, b)
	}
	return out, info, nil
}

func skipLimits(r *reader) {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// paramCounts reads the number of parameters of each of the count
// function types in body (the type section after its count).
func paramCounts(body []byte, count uint32) ([]uint32, error) {
	r := &reader{b: body}
	if int(count) > len(body) {
		return nil, fmt.Errorf("%w: type section too long", errMalformed)
	}
	out := make([]uint32, count)
	for i := range out {
		if form := r.byte(); r.err == nil && form != 0x60 {
			r.fail("type %d is not a function type (form 0x%02x)", i, form)
		}
		for vec := range 2 { // parameters, then results
			n := r.u32()
			if vec == 0 {
				out[i] = n
			}
			for range n {
				if r.err != nil {
					break
				}
				if t := r.byte(); t == 0x63 || t == 0x64 {
					r.fail("typed references are not supported")
				}
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if r.pos != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the function types", errMalformed, len(body)-r.pos)
	}
	return out, nil
}

// rewriteElements shifts the function indices of an element section.
func rewriteElements(b []byte, remap func(uint32) uint32) ([]byte, error) {
	r := &reader{b: b}
	count := r.u32()
	out := appendU32(nil, count)
	for i := uint32(0); i < count && r.err == nil; i++ {
		flags := r.u32()
		out = appendU32(out, flags)
		if flags > 7 {
			return nil, fmt.Errorf("%w: element segment flags %d", errMalformed, flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			out = appendU32(out, r.u32())
		}
		if flags&1 == 0 { // active: offset expression
			out = rewriteExpr(r, out, remap)
		}
		if flags&3 != 0 { // elemkind or reftype
			out = append(out, r.byte())
		}
		n := r.u32()
		out = appendU32(out, n)
		for j := uint32(0); j < n && r.err == nil; j++ {
			if flags&4 == 0 {
				out = appendU32(out, remap(r.u32()))
			} else {
				out = rewriteExpr(r, out, remap)
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// rewriteExpr copies a constant expression up to and including its end,
// shifting ref.func indices.
func rewriteExpr(r *reader, out []byte, remap func(uint32) uint32) []byte {
	depth := 0
	for r.err == nil {
		start := r.pos
		ins := decodeInstr(r)
		if r.err != nil {
			return out
		}
		if ins.funcIdx >= 0 {
			out = append(out, r.b[start:ins.funcIdx]...)
			out = appendU32(out, remap(ins.funcIdxVal))
		} else {
			out = append(out, r.b[start:r.pos]...)
		}
		switch ins.op {
		case 0x02, 0x03, 0x04:
			depth++
		case 0x0b:
			if depth == 0 {
				return out
			}
			depth--
		}
	}
	return out
}

// instr is one decoded instruction.
type instr struct {
	op byte
	// funcIdx is the offset of a function-index immediate to shift, or -1.
	funcIdx    int
	funcIdxVal uint32
}

// decodeInstr reads one instruction, skipping its immediates.
func decodeInstr(r *reader) instr {
	in := instr{funcIdx: -1}
	in.op = r.byte()
	switch op := in.op; {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
		op >= 0x45 && op <= 0xc4:
	case op >= 0x02 && op <= 0x04: // block type
		c := r.byte()
		if c != 0x40 && !(c >= 0x7b && c <= 0x7f) && c != 0x70 && c != 0x6f {
			r.pos--
			r.skipLEB(5) // s33 type index
		}
	case op == 0x0c, op == 0x0d, op >= 0x20 && op <= 0x26:
		r.u32()
	case op == 0x0e:
		n := r.u32()
		if int(n) > len(r.b)-r.pos {
			r.fail("br_table too long")
		}
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x10, op == 0xd2:
		in.funcIdx = r.pos
		in.funcIdxVal = r.u32()
	case op == 0x11:
		r.u32()
		r.u32()
	case op == 0x1c:
		n := r.u32()
		r.bytes(int(n))
	case op >= 0x28 && op <= 0x3e:
		r.u32()
		r.u32()
	case op == 0x3f, op == 0x40:
		r.u32()
	case op == 0x41:
		r.skipLEB(5)
	case op == 0x42:
		r.skipLEB(10)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0:
		r.byte()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.u32()
		default:
			r.fail("unsupported opcode 0xfc %d", sub)
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.u32()
			r.u32()
		case sub == 12, sub == 13:
			r.bytes(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.u32()
			r.u32()
			r.byte()
		case sub <= 0xff:
		default:
			r.fail("unsupported opcode 0xfd %d", sub)
		}
	default:
		r.fail("unsupported opcode 0x%02x", op)
	}
	return in
}

// fixups are the indices the rewrite adds: the tick and overflow imports,
// and the fuel and depth globals; imports is the count of imported
// functions (a callee below it is the host's) and typeParams the parameter
// count of each function type.
type fixups struct {
	tick, overflow, fuel, depth, imports uint32
	typeParams                           []uint32
}

// blockParams reports whether the block type bt (its encoding) takes
// parameters: only a type index can.
func (fx fixups) blockParams(bt []byte) bool {
	if len(bt) == 0 || bt[0] == 0x40 || len(bt) == 1 && bt[0] >= 0x6f {
		return false
	}
	var v uint64
	for i, c := range bt {
		v |= uint64(c&0x7f) << (7 * i)
	}
	return v >= uint64(len(fx.typeParams)) || fx.typeParams[v] > 0
}

// rewriteBody instruments one function body (locals and expression) of a
// function with params parameters. With checks it declares one more i32
// local, the function's fuel while it runs, and wraps each loop so that its
// tick runs outside it (the file comment).
func rewriteBody(body []byte, params uint32, remap func(uint32) uint32, fx fixups, checks bool) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	groups := r.pos // the local declarations, after their count
	locals := uint64(params)
	for i := uint32(0); i < n && r.err == nil; i++ {
		locals += uint64(r.u32())
		r.byte()
	}
	if locals > 50000 {
		r.fail("too many locals (%d)", locals)
	}
	if r.err != nil {
		return nil, r.err
	}
	codeStart := r.pos
	fuel := uint32(locals) // the new local's index

	// Pass 1: decode; find each loop's end to weigh its body, and whether
	// its block type takes parameters (such a loop keeps its tick inside).
	type loopMark struct {
		at, weight int
		params     bool
	}
	var loops []loopMark // in order of appearance
	var stack []int      // open blocks: their loop's index, or -1
	for r.pos < len(r.b) && r.err == nil {
		at := r.pos
		in := decodeInstr(r)
		switch in.op {
		case 0x02, 0x04:
			stack = append(stack, -1)
		case 0x03:
			loops = append(loops, loopMark{at: r.pos, params: fx.blockParams(body[at+1 : r.pos])})
			stack = append(stack, len(loops)-1)
		case 0x0b:
			if len(stack) > 0 {
				if i := stack[len(stack)-1]; i >= 0 {
					loops[i].weight = at - loops[i].at
				}
				stack = stack[:len(stack)-1]
			} else if r.pos != len(r.b) {
				r.fail("code after the function's end")
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(stack) != 0 || len(body) == codeStart || body[len(body)-1] != 0x0b {
		return nil, fmt.Errorf("%w: unbalanced blocks", errMalformed)
	}

	// Pass 2: emit.
	out := make([]byte, 0, len(body)+len(body)/4+32)
	if checks {
		out = appendU32(out, n+1)
		out = append(out, body[groups:codeStart]...)
		out = append(out, 0x01, 0x7f) // one more i32: the fuel
		out = appendEntry(out, len(body)-codeStart, fuel, fx)
	} else {
		out = append(out, body[:codeStart]...)
	}
	r.pos = codeStart
	next := 0
	// frames are the open blocks, innermost last: the loop each one is
	// (-1 for block and if), and whether the rewrite wrapped it.
	type frame struct {
		loop    int
		wrapped bool
	}
	var frames []frame
	// label maps a branch's label to the rewritten nesting: each wrapped
	// loop the branch leaves adds its wrappers' labels.
	label := func(l uint32) uint32 {
		a := l
		for j := 0; j < int(l) && j < len(frames); j++ {
			if frames[len(frames)-1-j].wrapped {
				a += loopWrappers
			}
		}
		return a
	}
	for r.pos < len(r.b) {
		start := r.pos
		in := decodeInstr(r)
		ins := body[start:r.pos]
		guestCall := checks && (in.op == 0x11 || in.op == 0x10 && in.funcIdxVal >= fx.imports)
		if checks && (guestCall || leaves(in.op, ins, len(frames))) {
			out = appendStore(out, fuel, fx)
		}
		if guestCall {
			out = appendEnter(out, fx)
		}
		switch {
		case !checks:
			if in.funcIdx >= 0 {
				out = append(out, r.b[start:in.funcIdx]...)
				out = appendU32(out, remap(in.funcIdxVal))
			} else {
				out = append(out, ins...)
			}
		case in.op == 0x02 || in.op == 0x04:
			frames = append(frames, frame{loop: -1})
			out = append(out, ins...)
		case in.op == 0x03:
			lp := loops[next]
			if lp.params {
				// The loop's parameters are on the stack at its header:
				// the tick stays inside.
				frames = append(frames, frame{loop: next})
				out = append(out, ins...)
				out = appendCharge(out, lp.weight, fuel, fx)
			} else {
				frames = append(frames, frame{loop: next, wrapped: true})
				out = append(out, 0x02)
				out = append(out, ins[1:]...)             // block $done, of the loop's type
				out = append(out, 0x03, 0x40, 0x02, 0x40) // loop $again, block $refuel
				out = append(out, ins...)                 // the loop
				out = appendChargeOut(out, lp.weight, fuel)
			}
			next++
		case in.op == 0x0b:
			out = append(out, ins...)
			if len(frames) == 0 {
				break // the function's end
			}
			f := frames[len(frames)-1]
			frames = frames[:len(frames)-1]
			if f.wrapped {
				out = appendRefuel(out, fuel, fx)
			}
		case in.op == 0x0c || in.op == 0x0d: // br, br_if
			br := &reader{b: ins, pos: 1}
			out = appendU32(append(out, in.op), label(br.u32()))
		case in.op == 0x0e: // br_table
			br := &reader{b: ins, pos: 1}
			k := br.u32()
			out = appendU32(append(out, in.op), k)
			for range k + 1 {
				out = appendU32(out, label(br.u32()))
			}
		case in.funcIdx >= 0:
			out = append(out, r.b[start:in.funcIdx]...)
			out = appendU32(out, remap(in.funcIdxVal))
		default:
			out = append(out, ins...)
		}
		if guestCall {
			out = appendLeave(out, fx)
			out = appendLoad(out, fuel, fx)
		}
	}
	return out, nil
}

// loopWrappers is how many labels the rewrite puts around a loop.
const loopWrappers = 3

// leaves reports whether the instruction ins (its bytes, opcode first),
// with depth blocks open around it, can leave the function: return, its
// final end (at depth 0), or a branch to its outermost label.
func leaves(op byte, ins []byte, depth int) bool {
	switch op {
	case 0x0f:
		return true
	case 0x0b:
		return depth == 0
	case 0x0c, 0x0d, 0x0e:
		r := &reader{b: ins, pos: 1}
		n := uint32(0)
		if op == 0x0e {
			n = r.u32() // the targets, then the default
		}
		for i := uint32(0); i <= n && r.err == nil; i++ {
			if int(r.u32()) == depth {
				return true
			}
		}
	}
	return false
}

// appendEnter emits: depth++; if depth > maxCallDepth { overflow() }.
// It leaves the operand stack (the call's arguments) as it was.
func appendEnter(out []byte, fx fixups) []byte {
	out = append(out, 0x23)
	out = appendU32(out, fx.depth)
	out = append(out, 0x41, 0x01, 0x6a, 0x24) // i32.const 1, i32.add, global.set
	out = appendU32(out, fx.depth)
	out = append(out, 0x23)
	out = appendU32(out, fx.depth)
	out = append(out, 0x41)
	out = appendS32(out, maxCallDepth)
	out = append(out, 0x4b, 0x04, 0x40, 0x10) // i32.gt_u, if (empty), call
	out = appendU32(out, fx.overflow)
	return append(out, 0x0b)
}

// appendLeave emits: depth--. A call that traps never gets here, but its
// instance is discarded.
func appendLeave(out []byte, fx fixups) []byte {
	out = append(out, 0x23)
	out = appendU32(out, fx.depth)
	out = append(out, 0x41, 0x01, 0x6b, 0x24) // i32.const 1, i32.sub, global.set
	return appendU32(out, fx.depth)
}

// appendEntry emits, at a function's start: local = global - weight; if
// local < 0 { local = tick() }.
func appendEntry(out []byte, weight int, local uint32, fx fixups) []byte {
	out = append(out, 0x23)
	out = appendU32(out, fx.fuel)
	out = appendSpend(out, weight, local)
	out = append(out, 0x41, 0x00, 0x48, 0x04, 0x40) // i32.const 0, i32.lt_s, if (empty)
	out = appendTick(out, local, fx)
	return append(out, 0x0b)
}

// appendCharge emits, at the header of a loop that keeps its tick inside:
// local -= weight; if local < 0 { local = tick() }.
func appendCharge(out []byte, weight int, local uint32, fx fixups) []byte {
	out = append(out, 0x20)
	out = appendU32(out, local)
	out = appendSpend(out, weight, local)
	out = append(out, 0x41, 0x00, 0x48, 0x04, 0x40) // i32.const 0, i32.lt_s, if (empty)
	out = appendTick(out, local, fx)
	return append(out, 0x0b)
}

// appendChargeOut emits, at the header of a wrapped loop: local -= weight;
// if local < 0, branch out to $refuel (label 1).
func appendChargeOut(out []byte, weight int, local uint32) []byte {
	out = append(out, 0x20)
	out = appendU32(out, local)
	out = appendSpend(out, weight, local)
	return append(out, 0x41, 0x00, 0x48, 0x0d, 0x01) // i32.const 0, i32.lt_s, br_if 1
}

// appendRefuel emits, after the end of a wrapped loop, the rest of its
// wrapping (the file comment): the loop's results leave through $done, and
// a branch out of fuel lands after $refuel, ticks and enters the loop again.
func appendRefuel(out []byte, local uint32, fx fixups) []byte {
	out = append(out, 0x0c, 0x02, 0x0b) // br $done, end $refuel
	out = appendTick(out, local, fx)
	return append(out, 0x0c, 0x00, 0x0b, 0x00, 0x0b) // br $again, end $again, unreachable, end $done
}

// appendSpend emits, with the fuel on the operand stack: local = fuel -
// (weight + chargeWeight), leaving it on the stack.
func appendSpend(out []byte, weight int, local uint32) []byte {
	weight = min(weight, math.MaxInt32/2) + chargeWeight
	out = append(out, 0x41)
	out = appendS32(out, int32(weight))
	out = append(out, 0x6b, 0x22) // i32.sub, local.tee
	return appendU32(out, local)
}

// appendTick emits: local = tick().
func appendTick(out []byte, local uint32, fx fixups) []byte {
	out = append(out, 0x10) // call
	out = appendU32(out, fx.tick)
	out = append(out, 0x21) // local.set
	return appendU32(out, local)
}

// appendStore emits: global = local (before a call or a way out).
func appendStore(out []byte, local uint32, fx fixups) []byte {
	out = append(out, 0x20)
	out = appendU32(out, local)
	out = append(out, 0x24)
	return appendU32(out, fx.fuel)
}

// appendLoad emits: local = global (after a call).
func appendLoad(out []byte, local uint32, fx fixups) []byte {
	out = append(out, 0x23)
	out = appendU32(out, fx.fuel)
	out = append(out, 0x21)
	return appendU32(out, local)
}
