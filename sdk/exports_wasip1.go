//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/moat-gateway/moat/sdk/abi"
)

//go:wasmimport moat log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

// Log writes a message to the plugin's log at level (LevelDebug..LevelError).
// In the sandbox it calls moat.log; natively it goes to slog.Default().
func Log(level int32, msg string) {
	if msg == "" {
		return
	}
	hostLog(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

// Buffers handed to the host. Keeping them in package variables keeps them
// reachable: the garbage collector must not free a buffer the host writes
// into, or a verdict the host has yet to read. Both are reused across
// calls, so a call allocates only the request's one string copy.
var (
	// request is the buffer from the last moat_alloc, reused while it is
	// large enough; a hook reads it and the next moat_alloc may overwrite it.
	request []byte
	// result is the last verdict, valid until the next call.
	result []byte
	// config is the last config seen: a request with the same bytes gets
	// this same slice, so config-derived state can be cached on it.
	config []byte
)

//go:wasmexport moat_abi_v2
func moatABIv2() {}

//go:wasmexport moat_alloc
func moatAlloc(size uint32) uint32 {
	if size > 1<<30 {
		return 0
	}
	if cap(request) < int(size) || cap(request) == 0 {
		request = make([]byte, max(size, 64))
	}
	request = request[:cap(request)]
	return uint32(uintptr(unsafe.Pointer(&request[0])))
}

//go:wasmexport moat_phases
func moatPhases() int32 {
	var m int32
	if handlers[0] != nil {
		m |= abi.PhaseBitInput
	}
	if handlers[1] != nil {
		m |= abi.PhaseBitOutput
	}
	if m == 0 {
		// No handler at all: name both, so every call fails closed.
		m = abi.PhaseBitInput | abi.PhaseBitOutput
	}
	return m
}

//go:wasmexport moat_input
func moatInput(ptr, n uint32) uint64 { return serve(handlers[0], ptr, n) }

//go:wasmexport moat_output
func moatOutput(ptr, n uint32) uint64 { return serve(handlers[1], ptr, n) }

func serve(h Handler, ptr, n uint32) uint64 {
	if len(request) == 0 || uintptr(ptr) != uintptr(unsafe.Pointer(&request[0])) || int(n) > len(request) {
		result = failV2(result[:0], "sdk: request buffer was not allocated by moat_alloc")
	} else {
		defer logPanic()
		result = dispatchV2(h, request[:n], result[:0], &config)
	}
	if len(result) == 0 {
		return 0
	}
	return abi.PackResult(uint32(uintptr(unsafe.Pointer(&result[0]))), uint32(len(result)))
}

// logPanic reports a handler's panic to the host's log, then lets it go on:
// the guest traps and the host counts the call as a plugin error.
func logPanic() {
	if r := recover(); r != nil {
		Log(LevelError, "panic in handler: "+panicString(r))
		panic(r)
	}
}

func panicString(r any) string {
	switch v := r.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	return "non-string panic value"
}
