package plugincli

// A tiny WebAssembly binary encoder: enough to write the no-op baseline
// module bench measures against, and hand-made modules in tests.

// Value types.
const (
	wasmI32 byte = 0x7f
	wasmI64 byte = 0x7e
)

// wasmFunc is one function of a built module.
type wasmFunc struct {
	params, results []byte
	// locals is the number of extra i32 locals.
	locals uint32
	// body is the code, ending with 0x0b (end).
	body []byte
	// export names the function in the export section ("" for none).
	export string
}

// wasmImport is one imported function.
type wasmImport struct {
	module, name    string
	params, results []byte
}

// wasmModule describes a module to encode.
type wasmModule struct {
	imports []wasmImport
	funcs   []wasmFunc
	// memPages is the initial memory; the memory is exported as "memory"
	// unless noMemoryExport.
	memPages       uint32
	noMemoryExport bool
}

func uleb(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func wasmName(b []byte, s string) []byte { return append(uleb(b, uint32(len(s))), s...) }

func section(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = uleb(out, uint32(len(body)))
	return append(out, body...)
}

func funcType(b []byte, params, results []byte) []byte {
	b = append(b, 0x60)
	b = append(uleb(b, uint32(len(params))), params...)
	return append(uleb(b, uint32(len(results))), results...)
}

// encode returns the module's binary.
func (m wasmModule) encode() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	// One type per import and function, in index order.
	var types []byte
	n := uint32(0)
	for _, im := range m.imports {
		types = funcType(types, im.params, im.results)
		n++
	}
	for _, f := range m.funcs {
		types = funcType(types, f.params, f.results)
		n++
	}
	out = section(out, 1, append(uleb(nil, n), types...))
	if len(m.imports) > 0 {
		b := uleb(nil, uint32(len(m.imports)))
		for i, im := range m.imports {
			b = wasmName(b, im.module)
			b = wasmName(b, im.name)
			b = append(b, 0x00)
			b = uleb(b, uint32(i))
		}
		out = section(out, 2, b)
	}
	fb := uleb(nil, uint32(len(m.funcs)))
	for i := range m.funcs {
		fb = uleb(fb, uint32(len(m.imports)+i))
	}
	out = section(out, 3, fb)
	out = section(out, 5, uleb([]byte{1, 0x00}, m.memPages))
	var exports []byte
	count := uint32(0)
	if !m.noMemoryExport {
		exports = append(wasmName(exports, "memory"), 0x02, 0x00)
		count++
	}
	for i, f := range m.funcs {
		if f.export == "" {
			continue
		}
		exports = append(wasmName(exports, f.export), 0x00)
		exports = uleb(exports, uint32(len(m.imports)+i))
		count++
	}
	out = section(out, 7, append(uleb(nil, count), exports...))
	code := uleb(nil, uint32(len(m.funcs)))
	for _, f := range m.funcs {
		var body []byte
		if f.locals > 0 {
			body = uleb(uleb(body, 1), f.locals)
			body = append(body, wasmI32)
		} else {
			body = uleb(body, 0)
		}
		body = append(body, f.body...)
		code = append(uleb(code, uint32(len(body))), body...)
	}
	return section(out, 10, code)
}

// Function bodies of a minimal ABI v1 plugin.
var (
	// bodyEmpty does nothing (moat_abi_v1, _initialize).
	bodyEmpty = []byte{0x0b}
	// bodyAlloc is moat_alloc(n): grows memory so that [1024, 1024+n) fits
	// and returns 1024, or 0 when memory cannot grow.
	bodyAlloc = []byte{
		0x20, 0x00, // local.get 0
		0x41, 0x80, 0x08, // i32.const 1024
		0x6a,                   // i32.add
		0x41, 0xff, 0xff, 0x03, // i32.const 65535
		0x6a,       // i32.add
		0x41, 0x10, // i32.const 16
		0x76,       // i32.shr_u: pages needed
		0x3f, 0x00, // memory.size
		0x6b,       // i32.sub
		0x22, 0x01, // local.tee 1
		0x41, 0x00, // i32.const 0
		0x4a,       // i32.gt_s
		0x04, 0x40, // if
		0x20, 0x01, // local.get 1
		0x40, 0x00, // memory.grow
		0x41, 0x7f, // i32.const -1
		0x46,       // i32.eq
		0x04, 0x40, // if
		0x41, 0x00, // i32.const 0
		0x0f,             // return
		0x0b,             // end
		0x0b,             // end
		0x41, 0x80, 0x08, // i32.const 1024
		0x0b, // end
	}
	// bodyAllowHook returns 0: allow, unchanged.
	bodyAllowHook = []byte{0x42, 0x00, 0x0b}
)

// Standard function shapes.
func abiMarker() wasmFunc { return wasmFunc{body: bodyEmpty, export: "moat_abi_v1"} }

func abiAlloc() wasmFunc {
	return wasmFunc{params: []byte{wasmI32}, results: []byte{wasmI32}, locals: 1, body: bodyAlloc, export: "moat_alloc"}
}

func abiHook(name string, body []byte) wasmFunc {
	return wasmFunc{params: []byte{wasmI32, wasmI32}, results: []byte{wasmI64}, body: body, export: name}
}

// noopModule is a plugin that allows everything without reading its
// input: the cost of the ABI and the sandbox alone, bench's baseline. It
// speaks ABI v1, so the host encodes a JSON request for it.
func noopModule() []byte { return noopModuleWith(abiMarker()) }

// noopModuleV2 is noopModule speaking ABI v2: the host copies the request
// in its binary layout, with no JSON.
func noopModuleV2() []byte {
	return noopModuleWith(wasmFunc{body: bodyEmpty, export: "moat_abi_v2"})
}

func noopModuleWith(marker wasmFunc) []byte {
	return wasmModule{
		memPages: 1,
		funcs: []wasmFunc{
			marker,
			abiAlloc(),
			abiHook("moat_input", bodyAllowHook),
			abiHook("moat_output", bodyAllowHook),
		},
	}.encode()
}
